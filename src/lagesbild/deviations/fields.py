"""The forum's own fields per category (the number of people, whether the police were called, the colour of
a tag): defined by the coordinators on the categories page, filled in on reports, and checked here, for the
report form, the API and the filters alike."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.deviations.models import Category, CategoryField
from lagesbild.deviations.services import forum_categories
from lagesbild.errors import InvalidInput, NotFound
from lagesbild.forums.models import Forum, Membership
from lagesbild.forums.services import require_coordinator
from lagesbild.inputs import visible_text

Kind = CategoryField.Kind
MAX_TEXT = 200
MAX_LABEL = 80
MAX_CHOICES = 30
MAX_CHOICE = 60
MAX_PER_FORUM = 40
NUMBER_LIMIT = 1e9  # a count or a measure, not an account number
YES = {"true", "yes", "ja", "1", "on"}
NO = {"false", "no", "nej", "0", "off"}


MAX_FILTERS = 10
KEY = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")  # never a number (a JSON array index), never a "__" path


def forum_fields(forum: Forum) -> QuerySet[CategoryField]:
    """The forum's fields in use (not those removed)."""
    return CategoryField.objects.filter(forum=forum, removed_at__isnull=True).select_related("category")


def fields_for(forum: Forum, category: Category) -> list[CategoryField]:
    """The fields of a category's reports: its own, and those of its main category."""
    ids = [category.pk] + ([category.parent_id] if category.parent_id else [])
    return list(forum_fields(forum).filter(category_id__in=ids).order_by("position", "pk"))


def stored_value(key: str) -> KeyTransform:
    """A field's stored value, as an expression: the key is never read as a lookup or a path ("in",
    "has_key", "a__b"), whatever it is."""
    return KeyTransform(key, "fields")


def value_of(definition: CategoryField, raw: Any) -> Any:
    """One field's value as stored (str, int or float, bool), or None for empty. Raises InvalidInput naming
    the field, in words the reporter understands."""
    where = f"fields.{definition.key}"
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if definition.kind == Kind.YES_NO:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in YES or word in NO:
            return word in YES
        raise InvalidInput(_("%(label)s is yes or no.") % {"label": definition.label}, field=where)
    if definition.kind == Kind.NUMBER:
        if isinstance(raw, bool):
            raise InvalidInput(_("%(label)s is a number.") % {"label": definition.label}, field=where)
        if isinstance(raw, int | float):
            number = float(raw)
        else:
            text = str(raw).strip().replace(",", ".").replace(" ", "").replace("\u00a0", "")
            if not text or not all(c in "0123456789.-+eE" for c in text) or not text.isascii():
                raise InvalidInput(_("%(label)s is a number.") % {"label": definition.label}, field=where)
            try:
                number = float(text)
            except ValueError:
                raise InvalidInput(_("%(label)s is a number.") % {"label": definition.label}, field=where) from None
        if not math.isfinite(number) or abs(number) > NUMBER_LIMIT:
            raise InvalidInput(_("%(label)s is a number between -1,000,000,000 and 1,000,000,000.")
                               % {"label": definition.label}, field=where)
        return int(number) if number.is_integer() else number
    if not isinstance(raw, str):
        raise InvalidInput(_("%(label)s is text.") % {"label": definition.label}, field=where)
    text = " ".join(raw.split())
    if definition.kind == Kind.CHOICE:
        if text not in definition.choices:
            raise InvalidInput(_("%(label)s is one of: %(choices)s.")
                               % {"label": definition.label, "choices": ", ".join(definition.choices)}, field=where)
        return text
    if len(text) > MAX_TEXT:
        raise InvalidInput(_("%(label)s is at most %(max)s characters.") % {"label": definition.label,
                                                                             "max": MAX_TEXT}, field=where)
    return text


def cleaned(forum: Forum, category: Category, values: dict[str, Any] | None) -> dict[str, Any] | None:
    """The category's fields from `values`, checked: unknown ones refused, required ones demanded. None when
    nothing is filled in."""
    values = values or {}
    if not isinstance(values, dict):
        raise InvalidInput(_("The fields are given as an object of field names and values."), field="fields")
    definitions = fields_for(forum, category)
    known = {d.key for d in definitions}
    for key in values:
        if key not in known:
            raise InvalidInput(_("%(category)s has no field %(key)s.") % {"category": category.name,
                                                                          "key": f"“{key[:40]}”"},
                               field=f"fields.{key[:40]}")
    result = {}
    for definition in definitions:
        value = value_of(definition, values.get(definition.key))
        if value is None:
            if definition.required:
                raise InvalidInput(_("Fill in %(label)s.") % {"label": definition.label},
                                   field=f"fields.{definition.key}")
            continue
        result[definition.key] = value
    return result or None


def filtered(queryset: QuerySet[Any], forum: Forum, expressions: Sequence[str]) -> QuerySet[Any]:
    """The deviations that hold each `key:value` (yes/no as ja or nej, a number, a choice, or text contained);
    a bare `key:` is "filled in". Each value is read as an alias of its own, never through a path built from
    the key."""
    if len(expressions) > MAX_FILTERS:
        raise InvalidInput(_("At most %(max)s field filters at once.") % {"max": MAX_FILTERS}, field="field")
    definitions = {d.key: d for d in forum_fields(forum)}
    for n, expression in enumerate(expressions):
        key, sep, raw = expression.partition(":")
        definition = definitions.get(key) if sep else None
        if definition is None:
            raise InvalidInput(_("A field filter is written field:value, with one of the forum's fields."),
                               field="field")
        value = value_of(definition, raw)
        name = f"own_field_{n}"
        if value is None:
            queryset = queryset.filter(fields__has_key=key)  # the key as a value, never as a path
        elif definition.kind == Kind.TEXT:
            queryset = queryset.alias(**{name: KeyTextTransform(key, "fields")}).filter(
                **{f"{name}__icontains": value})
        else:
            queryset = queryset.alias(**{name: stored_value(key)}).filter(**{name: value})
    return queryset


# --- Defining fields (coordinators) ---------------------------------------------------------------------

@dataclass
class FieldInput:
    category: str
    label: str
    kind: str
    choices: list[str] = field(default_factory=list)
    required: bool = False


def add_field(manager: Membership, data: FieldInput) -> CategoryField:
    require_coordinator(manager, "fields by a non-coordinator", _("Only the forum's coordinators can change its "
                                                                    "categories."))
    category = forum_categories(manager.forum).filter(key=data.category).first()
    if category is None:
        raise InvalidInput(_("Choose a category."), field="category")
    label = visible_text(data.label)
    if not label:
        raise InvalidInput(_("Give the field a name."), field="label")
    if len(label) > MAX_LABEL:
        raise InvalidInput(_("A field's name is at most %(max)s characters.") % {"max": MAX_LABEL}, field="label")
    if data.kind not in Kind.values:
        raise InvalidInput(_("Choose the field's type."), field="kind")
    choices: list[str] = []
    if data.kind == Kind.CHOICE:
        for choice in data.choices:
            text = visible_text(choice)
            if text and text not in choices:
                choices.append(text)
        if not 2 <= len(choices) <= MAX_CHOICES or any(len(c) > MAX_CHOICE for c in choices):
            raise InvalidInput(_("A choice field has 2 to %(max)s choices, each at most %(length)s characters.")
                               % {"max": MAX_CHOICES, "length": MAX_CHOICE}, field="choices")
    in_use = forum_fields(manager.forum)
    if in_use.count() >= MAX_PER_FORUM:
        raise InvalidInput(_("A forum has at most %(max)s fields of its own.") % {"max": MAX_PER_FORUM},
                           field="label")
    # The labels a report would show beside this one: its category's, its main category's and, for a main
    # category, its subcategories'.
    beside = in_use.filter(Q(category=category) | Q(category_id=category.parent_id) | Q(category__parent=category))
    if any(d.label.lower() == label.lower() for d in beside):
        raise InvalidInput(_("%(category)s has a field %(label)s already.") % {"category": category.name,
                                                                                "label": label}, field="label")
    for _attempt in range(3):
        # Every key ever used is taken, removed fields' too (their values stay stored under it).
        key = new_key(label, set(CategoryField.objects.filter(forum=manager.forum).values_list("key", flat=True)))
        try:
            with transaction.atomic():
                created = CategoryField.objects.create(forum=manager.forum, category=category, key=key, label=label,
                                                       kind=data.kind, choices=choices, required=data.required,
                                                       position=in_use.count())
                audit.record(manager, AuditEvent.Action.SETTINGS, manager.forum,
                             {"field": key, "category": category.key, "kind": data.kind, "added": True})
            return created
        except IntegrityError:  # another coordinator took the key at the same moment: the next one
            continue
    raise InvalidInput(_("The field could not be added just now. Try again."), field="label")


def new_key(label: str, taken: set[str]) -> str:
    """A key for the API, filters and exports, from the label: lower-case letters, digits and single "_",
    starting with a letter; never one taken before."""
    words = re.findall(r"[a-z0-9]+", slugify(label))
    base = "_".join(words)[:30].strip("_") or "falt"
    if not base[0].isalpha():
        base = f"falt_{base}"[:30].strip("_")
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


def remove_field(manager: Membership, field_id: int) -> CategoryField:
    """Takes the field off the report form. What was filled in stays stored on the deviations, but is no
    longer shown, asked for, filtered on or exported."""
    require_coordinator(manager, "fields by a non-coordinator", _("Only the forum's coordinators can change its "
                                                                    "categories."))
    found = forum_fields(manager.forum).filter(pk=field_id).first()
    if found is None:
        raise NotFound(_("No such field."))
    with transaction.atomic():
        CategoryField.objects.filter(pk=found.pk).update(removed_at=timezone.now())
        audit.record(manager, AuditEvent.Action.SETTINGS, manager.forum, {"field": found.key, "removed": True})
    return found


def as_json(definition: CategoryField) -> dict[str, Any]:
    return {"key": definition.key, "label": definition.label, "kind": definition.kind,
            "choices": definition.choices, "required": definition.required}
