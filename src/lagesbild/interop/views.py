"""The import pages: the organisation's imports with an upload form, and one import's steps (mapping, dry
run, import, undo) with its progress."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from lagesbild.csvfile import rows_as_csv
from lagesbild.deviations.models import Deviation
from lagesbild.deviations.services import forum_categories, hidden_category_ids
from lagesbild.errors import DomainError, InvalidInput
from lagesbild.forums.models import Membership
from lagesbild.inputs import parse_id
from lagesbild.interop import imports
from lagesbild.interop.models import ImportBatch
from lagesbild.interop.reading import Layout
from lagesbild.pages import member_and, member_who

PROBLEMS_SHOWN = 200
IMPORT_PAGE_OPS = ("check", "import", "undo", "discard", "restart")  # the buttons of an import's page


def _importer(request: HttpRequest, forum: str) -> Membership | HttpResponse:
    return member_who(request, forum, lambda m: m.can_import,
                      _("Only coordinators and organisation leads can import deviations."))


def imports_page(request: HttpRequest, forum: str) -> HttpResponse:
    membership = _importer(request, forum)
    if isinstance(membership, HttpResponse):
        return membership
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":  # the one operation here: "upload"
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise InvalidInput(_("Choose a file to import."), field="file")
            batch = imports.upload(membership, upload)
            return redirect("import", forum=forum, batch_id=batch.pk)
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
    return render(request, "interop/imports.html", {
        "forum": membership.forum, "membership": membership, "batches": imports.batches_of(membership),
        "errors": errors, "max_mb": settings.LAGESBILD_IMPORT_MAX_MB}, status=status)


def _batch(request: HttpRequest, forum: str, batch_id: int) -> tuple[Membership, ImportBatch] | HttpResponse:
    return member_and(request, forum, lambda m: imports.get_batch(m, batch_id), lambda m: m.can_import,
                      _("Only coordinators and organisation leads can import deviations."))


def import_page(request: HttpRequest, forum: str, batch_id: int) -> HttpResponse:
    found = _batch(request, forum, batch_id)
    if isinstance(found, HttpResponse):
        return found
    membership, batch = found
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            message = _post(request, membership, batch)
            if message is None:
                return redirect("imports", forum=forum)
            return redirect("import", forum=forum, batch_id=batch.pk)
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
            batch.refresh_from_db()
    return render(request, "interop/import.html", {**_context(membership, batch), "errors": errors},
                  status=status)


def _post(request: HttpRequest, membership: Membership, batch: ImportBatch) -> str | None:
    """Carry out the button pressed; None when the import is gone (thrown away)."""
    data = request.POST
    op = data.get("op", "")
    if op == "undo":
        imports.undo(membership, batch)
        return op
    if op == "import":
        imports.start_import(membership, batch)
        return op
    if op == "discard":
        imports.discard(membership, batch)
        return None
    if op == "restart":
        imports.restart(membership, batch)
        return op
    if op != "check":
        raise InvalidInput(_("Unknown operation."), field="op")
    layout = Layout.from_json(batch.layout)
    columns = {header: data.get(f"column-{n}", "") for n, header in enumerate(layout.headers)}
    values = sorted(batch.mapping.get("categories") or {})
    categories = {value: data.get(f"category-{n}", "") for n, value in enumerate(values)
                  if f"category-{n}" in data}
    crs = parse_id(data.get("crs") or None, "crs") or 0
    imports.save_mapping(membership, batch, columns, crs=crs, swapped=data.get("swapped") == "on",
                         visibility=data.get("visibility", Deviation.Visibility.FORUM), categories=categories,
                         skip_duplicates=data.get("skip_duplicates") == "on")
    return op


def _context(membership: Membership, batch: ImportBatch) -> dict[str, object]:
    layout = Layout.from_json(batch.layout)
    mapping = batch.mapping
    columns = mapping.get("columns", {})
    targets = [t for t in imports.TARGETS if t.key != "organisation" or membership.can_administer_forum]
    if layout.has_geometry:
        targets = [t for t in targets if t.key not in {"x", "y"}]
    hidden = hidden_category_ids(membership.forum)
    categories = [c for c in forum_categories(membership.forum) if c.pk not in hidden]
    category_values = mapping.get("categories") or {}
    problems = batch.problems or []
    return {
        "forum": membership.forum, "membership": membership, "batch": batch, "layout": layout,
        "rows": [{"n": n, "header": header, "target": columns.get(header, ""),
                  "samples": [s[n] if n < len(s) else "" for s in layout.samples][:3]}
                 for n, header in enumerate(layout.headers)],
        "targets": targets, "crs_choices": sorted(imports.CRS_CHOICES.items()),
        "crs": int(mapping.get("crs") or 0), "swapped": bool(mapping.get("swapped")),
        "visibility": mapping.get("visibility", "forum"), "skip_duplicates": mapping.get("skip_duplicates", True),
        "detected": mapping.get("detected"), "used_crs": mapping.get("used_crs"),
        "used_crs_name": imports.CRS_CHOICES.get(int((mapping.get("used_crs") or {}).get("crs") or 0), ""),
        "category_rows": [{"n": n, "value": value, "key": category_values[value]}
                          for n, value in enumerate(sorted(category_values))],
        "categories": categories,
        "errors_count": sum(1 for p in problems if p["kind"] == "error"),
        "problems": problems[:PROBLEMS_SHOWN], "more_problems": max(0, len(problems) - PROBLEMS_SHOWN),
        "editable": batch.status in {ImportBatch.Status.UPLOADED, ImportBatch.Status.CHECKED,
                                     ImportBatch.Status.FAILED},
        "running": batch.status in {ImportBatch.Status.CHECKING, ImportBatch.Status.IMPORTING},
        "progress": imports.progress(batch),
        "changed": imports.changed_since_import(batch) if batch.status == ImportBatch.Status.IMPORTED else 0,
    }


@require_GET
def import_progress(request: HttpRequest, forum: str, batch_id: int) -> HttpResponse:
    found = _batch(request, forum, batch_id)
    if isinstance(found, HttpResponse):
        return found
    return JsonResponse(imports.progress(found[1]))


@require_GET
def import_problems_csv(request: HttpRequest, forum: str, batch_id: int) -> HttpResponse:
    found = _batch(request, forum, batch_id)
    if isinstance(found, HttpResponse):
        return found
    batch = found[1]
    kinds = {"error": _("Error"), "duplicate": _("Duplicate, left out"), "warning": _("Warning")}
    rows = [[p["row"], p["column"], p["value"], p["message"], kinds.get(p["kind"], p["kind"])]
            for p in batch.problems]
    body = "\ufeff" + rows_as_csv([_("Row"), _("Column"), _("Value"), _("Problem"), _("Kind")], rows)
    response = HttpResponse(body.encode("utf-8"), content_type="text/csv; charset=utf-8")
    stamp = dt.date.today().isoformat()
    response["Content-Disposition"] = f'attachment; filename="import-{batch.pk}-problem-{stamp}.csv"'
    return response
