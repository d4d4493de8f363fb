"""Rules about where code may do certain things, read from the source, so that a whole class of defect
cannot come back unnoticed:

- one read gate and one write path: deviations are queried and changed only in deviations/services.py
  (which holds the visibility rule, versions and the audit), with retention and the demo as the exceptions;
- one permission table: nothing outside forums/models.py compares a member's role;
- every integer the API reads is bounded (so no id or filter can overflow the database).
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path
from typing import Any

import pytest

import lagesbild

pytestmark = pytest.mark.pure  # reads source files only

PACKAGE = Path(lagesbild.__file__).parent
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)
TEMPLATES = sorted(PACKAGE.rglob("*.html"))


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _chain(node: ast.AST) -> list[str]:
    """a.b.c(...).d as ["a", "b", "c", "d"] (calls and subscripts skipped)."""
    names: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, (ast.Call, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
        elif isinstance(node, ast.Name):
            names.append(node.id)
            break
        else:
            break
    return names[::-1]


# --- One read gate, one write path --------------------------------------------------------------------------

# Files allowed to reach the deviation tables directly, and why.
DEVIATION_TABLES_ALLOWED = {
    "deviations/services.py": "the gate itself: the visibility rule, every write, versions and audit",
    "deviations/retention.py": "anonymises and deletes old deviations of a whole forum, by the forum's own rule",
    "demo.py": "creates the demo forum's invented deviations in bulk",
    "deviations/bulk.py": "writes an import's checked rows thousands at a time (COPY on PostgreSQL)",
    "forums/management/commands/demo.py": "reports how many deviations the demo forum got",
    "deviations/presenters.py": "shows the photos, comments and shares of a deviation already read through the gate",
}
MODELS = {"Deviation", "DeviationShare", "Photo", "Comment"}
MANAGERS = {"objects", "_default_manager", "_base_manager"}
# Related managers that lead to deviations (Forum.deviations, Organisation.deviations, Action.deviations, ...),
# when a queryset method is called on them.
RELATED = {"deviations", "photos", "comments", "shares"}
QUERYSET_METHODS = {"all", "filter", "exclude", "get", "first", "last", "count", "exists", "values", "values_list",
                    "select_related", "prefetch_related", "order_by", "annotate", "aggregate", "update", "delete",
                    "create", "bulk_create", "in_bulk", "iterator"}


def deviation_table_uses(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        chain = _chain(node)
        for model, manager in itertools.pairwise(chain):
            if model in MODELS and manager in MANAGERS:
                found.append((node.lineno, f"{model}.{manager}"))
        if node.attr in QUERYSET_METHODS and isinstance(node.value, ast.Attribute) and node.value.attr in RELATED:
            found.append((node.lineno, f".{node.value.attr}"))
    return sorted(set(found))


def test_deviations_are_read_and_written_only_through_their_services() -> None:
    offenders = []
    for path in SOURCES:
        if relative(path) in DEVIATION_TABLES_ALLOWED:
            continue
        offenders += [f"{relative(path)}:{line} {what}" for line, what in deviation_table_uses(path.read_text())]
    assert offenders == [], ("Deviations are read through deviations.services.visible_deviations (or "
                             "forum_wide_deviations) and changed only in deviations/services.py: "
                             + ", ".join(offenders))


def test_the_gate_rule_can_see_a_query_and_a_write() -> None:
    """The rule above must be able to fail."""
    assert deviation_table_uses("Deviation.objects.filter(pk=1).update(status='new')") == [(1, "Deviation.objects")]
    assert deviation_table_uses("x = forum.deviations.count()") == [(1, ".deviations")]
    assert deviation_table_uses("x = payload.deviations") == []
    assert deviation_table_uses("Photo._base_manager.all()") == [(1, "Photo._base_manager")]
    assert deviation_table_uses("services.visible_deviations(m).filter(pk=1)") == []


# --- One permission table ---------------------------------------------------------------------------------------

ROLE_NAMES = {"coordinator", "org_lead", "reporter", "viewer"}


def role_comparisons(source: str) -> list[int]:
    """Lines comparing something's `.role`, or a role's name as a string, with anything."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.Attribute) and o.attr == "role" for o in operands) or any(
                isinstance(o, ast.Constant) and o.value in ROLE_NAMES for o in operands):
            lines.append(node.lineno)
    return lines


def test_only_the_membership_model_compares_roles() -> None:
    offenders = [f"{relative(path)}:{line}" for path in SOURCES if relative(path) != "forums/models.py"
                 for line in role_comparisons(path.read_text())]
    assert offenders == [], "Ask the Membership what it may do (forums/models.py): " + ", ".join(offenders)


def test_templates_ask_the_membership_rather_than_compare_roles() -> None:
    pattern = re.compile(r"\.role\s*(==|!=)|role\s*(==|!=)\s*[\"'](" + "|".join(ROLE_NAMES) + ")")
    offenders = [f"{relative(path)}:{number}" for path in TEMPLATES
                 for number, line in enumerate(path.read_text().splitlines(), start=1) if pattern.search(line)]
    assert offenders == []


def test_the_role_rule_can_see_a_comparison() -> None:
    assert role_comparisons("if membership.role == Role.COORDINATOR: pass") == [1]
    assert role_comparisons("ok = m.role in {'a'}") == [1]
    assert role_comparisons("if kind == 'org_lead': pass") == [1]
    assert role_comparisons("if membership.is_coordinator: pass") == []


# --- Bounded numbers ------------------------------------------------------------------------------------------

def _integers(schema: Any, where: str, document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every integer schema inside `schema`, following $refs."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return _integers(document["components"]["schemas"][name], f"{where}>{name}", document)
        found = [(where, schema)] if schema.get("type") == "integer" else []
        for key, value in schema.items():
            found += _integers(value, f"{where}.{key}", document)
        return found
    if isinstance(schema, list):
        return [item for value in schema for item in _integers(value, where, document)]
    return []


def test_every_integer_the_api_reads_is_bounded(db: None) -> None:
    from django.test import Client

    document = Client().get("/api/openapi.json").json()
    unbounded = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            inputs = [p.get("schema", {}) for p in operation.get("parameters", [])]
            inputs += [media.get("schema", {}) for media in operation.get("requestBody", {}).get("content", {})
                       .values()]
            for where, schema in _integers(inputs, f"{method.upper()} {path}", document):
                if "maximum" not in schema or schema["maximum"] > 2**63 - 1 or "minimum" not in schema:
                    unbounded.append(where)
    assert unbounded == [], "use lagesbild.api.Id or NonNegativeInt: " + ", ".join(sorted(set(unbounded)))


# --- Everything a forum owns says which forum ---------------------------------------------------------------

# Tables that reference a forum's data but hold none of their own, and why they need no forum_id.
FORUM_ID_NOT_NEEDED: dict[str, str] = {}


def forum_owned_tables() -> dict[str, list[str]]:
    """Each table that holds a forum's data (it points at the forum, or at a table that does), with the
    forum-owned tables it points at."""
    from django.apps import apps

    from lagesbild.forums.models import Forum

    models = [m for m in apps.get_models(include_auto_created=True) if m.__module__.startswith("lagesbild.")]
    owned: dict[Any, list[str]] = {}
    changed = True
    while changed:
        changed = False
        for model in models:
            if model is Forum or model in owned:
                continue
            targets = [f.related_model for f in model._meta.concrete_fields if f.many_to_one or f.one_to_one]
            reasons = [t._meta.db_table for t in targets if t is Forum or t in owned]
            if reasons:
                owned[model] = reasons
                changed = True
    return {m._meta.db_table: reasons for m, reasons in owned.items()}


def test_every_table_a_forum_owns_has_its_forum_id() -> None:
    """A national installation spreads its data over machines by forum_id (docs/deployment.md): a table that
    holds a forum's data without the column could not be placed beside its forum's other rows."""
    from django.apps import apps

    lacking = []
    for table, reasons in forum_owned_tables().items():
        model = next(m for m in apps.get_models(include_auto_created=True) if m._meta.db_table == table)
        columns = {f.column for f in model._meta.concrete_fields}
        if "forum_id" not in columns and table not in FORUM_ID_NOT_NEEDED:
            lacking.append(f"{table} (points at {', '.join(reasons)})")
    assert lacking == [], "forum-owned tables without forum_id: " + "; ".join(sorted(lacking))
    assert "deviations_deviationcount" in forum_owned_tables()
    assert "deviations_deviation" in forum_owned_tables()
