"""Importing deviations from a file: upload, map its columns, check every row (the dry run), then import all
of it or nothing, as a background task. A batch can be undone.

The steps, each a function here, each with its own page:
1. `upload`: the file is stored, its format, columns and first rows are read, and a mapping is suggested
   from what the forum mapped before and from the names Lägesbild's own exports use.
2. `save_mapping` and then `check` (in the background): every row is read and held to the same rules as a
   report (services.check_values). Problems are kept per row; categories are matched by name.
3. `run_import` (in the background): the rows are read and checked again and written in one transaction.
   Any problem stops it, and nothing is written.
4. `undo`: every deviation of the batch is withdrawn, as if its reporter had withdrawn it.

Rows that repeat a row above them, or a deviation already in the forum that the importer can see, are
duplicates: reported, and left out of the import.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import math
import os
import re
import shutil
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import shapely
import shapely.geometry
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pyproj import Transformer

from lagesbild import geometry, personal_data
from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import bulk
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Category, Deviation
from lagesbild.errors import DomainError, Forbidden, InvalidInput, NotFound
from lagesbild.forums.models import Forum, Membership, Organisation
from lagesbild.interop import reading
from lagesbild.interop.models import ImportBatch, ImportMemory

log = logging.getLogger(__name__)

Status = ImportBatch.Status
MAX_STORED_PROBLEMS = 2000  # kept to show and download; all are counted
MAX_CATEGORY_VALUES = 300  # more different values than this is not a category column
CHUNK = 2000  # rows checked against the database and written at a time
STALLED_AFTER = dt.timedelta(minutes=10)  # a background step silent this long has died with its worker


@dataclass(frozen=True)
class Target:
    key: str
    label: Any  # lazily translated
    required: bool = False


# What a column can be mapped to, in the order the mapping step lists them.
TARGETS = (
    Target("observed_at", gettext_lazy("Observed (date, or date and time)"), True),
    Target("observed_time", gettext_lazy("Time of day (when in a column of its own)")),
    Target("observed_until", gettext_lazy("Observed until")),
    Target("reported_at", gettext_lazy("Reported")),
    Target("category", gettext_lazy("Category"), True),
    Target("x", gettext_lazy("Longitude or easting (x)"), True),
    Target("y", gettext_lazy("Latitude or northing (y)"), True),
    Target("place_name", gettext_lazy("Place or address")),
    Target("description", gettext_lazy("Description")),
    Target("severity", gettext_lazy("Severity")),
    Target("status", gettext_lazy("Status")),
    Target("visibility", gettext_lazy("Visibility")),
    Target("organisation", gettext_lazy("Reporting organisation (coordinators)")),
)
TARGET_KEYS = tuple(t.key for t in TARGETS)

# Coordinate systems a file may use. SWEREF 99 TM is the national one; the local SWEREF 99 zones (18 00 is
# Stockholm's) are what municipal GIS and older surveys use.
CRS_CHOICES: dict[int, str] = {
    4326: "WGS 84 (longitud, latitud)",
    3006: "SWEREF 99 TM",
    3007: "SWEREF 99 12 00", 3008: "SWEREF 99 13 30", 3009: "SWEREF 99 15 00", 3010: "SWEREF 99 16 30",
    3011: "SWEREF 99 18 00", 3012: "SWEREF 99 14 15", 3013: "SWEREF 99 15 45", 3014: "SWEREF 99 17 15",
    3015: "SWEREF 99 18 45", 3016: "SWEREF 99 20 15", 3017: "SWEREF 99 21 45", 3018: "SWEREF 99 23 15",
}


def _norm(text: Any) -> str:
    """A name as it is compared: lower case, accents kept (å is not a), separators and spaces collapsed."""
    return re.sub(r"[\s_\-.:()/]+", " ", unicodedata.normalize("NFC", str(text)).strip().lower()).strip()


# Column names that mean a target, besides what the forum taught it: Lägesbild's own export headers in
# Swedish and English (so an export imports again unchanged), its GeoJSON keys, and common spreadsheet names.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "observed_at": ("observerad", "observed", "observedat", "observed at", "datum", "date", "tidpunkt", "tid",
                    "datum och tid", "händelsedatum", "inträffade", "when", "time"),
    "observed_time": ("klockslag", "klockan", "kl", "time of day"),
    "observed_until": ("observerad till", "observed until", "observeduntil", "till", "slut", "until"),
    "reported_at": ("rapporterad", "reported", "reportedat", "inrapporterad"),
    "category": ("kategorinyckel", "category key", "categorykey", "kategori", "category", "typ", "händelsetyp",
                 "avvikelse", "type"),
    "x": ("longitud", "longitude", "lon", "lng", "long", "x", "e", "östlig", "easting", "öst (sweref 99 tm)",
          "easting (sweref 99 tm)", "ost", "öst", "x koordinat"),
    "y": ("latitud", "latitude", "lat", "y", "n", "nordlig", "northing", "nord (sweref 99 tm)",
          "northing (sweref 99 tm)", "nord", "y koordinat"),
    "place_name": ("plats", "place", "placename", "place name", "adress", "address", "gata", "plats eller adress"),
    "description": ("beskrivning", "description", "text", "kommentar", "anteckning", "notering"),
    "severity": ("allvarlighetsgrad", "severity", "allvar", "prioritet"),
    "status": ("status", "läge"),
    "visibility": ("synlighet", "visibility"),
    "organisation": ("rapporterad av", "reported by", "organisation", "organization", "aktör", "rapportör"),
}


@lru_cache(maxsize=1)
def _synonym_index() -> dict[str, tuple[str, int]]:
    """Known column name -> (target, rank); where two columns could be one target, the lower rank wins (an
    export's "Kategorinyckel" over its "Kategori")."""
    index: dict[str, tuple[str, int]] = {}
    for target, names in SYNONYMS.items():
        for rank, name in enumerate(names):
            index.setdefault(_norm(name), (target, rank + 1))
    # The export's own headers, in both languages, whatever the language of the one who imports.
    from lagesbild.interop.export import columns

    keys = {"observedAt": "observed_at", "observedUntil": "observed_until", "reportedAt": "reported_at",
            "categoryKey": "category", "placeName": "place_name", "description": "description",
            "severity": "severity", "status": "status", "visibility": "visibility", "organisation": "organisation",
            "x": "x", "y": "y"}
    for language in ("sv", "en"):
        with translation.override(language):
            for crs in (4326, 3006):
                for column in columns(crs):
                    if column.key in keys:
                        index[_norm(column.header)] = (keys[column.key], 0)
    for key, target in keys.items():
        index[_norm(key)] = (target, 0)
    return index


# --- Files -------------------------------------------------------------------------------------------------

def _directory(batch: ImportBatch) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / str(batch.forum_id) / str(batch.pk)


def _file(batch: ImportBatch) -> Path:
    return Path(settings.MEDIA_ROOT) / batch.path


def _remove_files(batch: ImportBatch) -> None:
    shutil.rmtree(_directory(batch), ignore_errors=True)
    if batch.path:
        ImportBatch.objects.filter(pk=batch.pk).update(path="")
        batch.path = ""


def _write_progress(batch: ImportBatch, phase: str, done: int, total: int) -> None:
    """Progress lives in a small file beside the upload: the import writes in one transaction, which nobody
    else can see into until it ends, and the page still needs to show how far it has come."""
    directory = _directory(batch)
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / "progress.json.tmp"
    temporary.write_text(json.dumps({"phase": phase, "done": done, "total": total}))
    os.replace(temporary, directory / "progress.json")


def progress(batch: ImportBatch) -> dict[str, Any]:
    """How far the batch's background step has come, for the progress bar."""
    answer: dict[str, Any] = {"status": batch.status, "done": 0, "total": 0, "stalled": False}
    path = _directory(batch) / "progress.json"
    try:
        data = json.loads(path.read_text())
        answer.update(done=int(data["done"]), total=int(data["total"]))
        touched = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
    except (OSError, ValueError, KeyError, TypeError):
        touched = batch.created_at
    if batch.status in {Status.CHECKING, Status.IMPORTING} and timezone.now() - touched > STALLED_AFTER:
        answer["stalled"] = True
    return answer


# --- Step 1: upload ---------------------------------------------------------------------------------------

def _importer(membership: Membership) -> None:
    if not membership.can_import:
        raise Forbidden(_("Only coordinators and organisation leads can import deviations."))


def upload(membership: Membership, upload_file: UploadedFile) -> ImportBatch:
    """Store the file and read what it holds. Nothing is imported yet."""
    _importer(membership)
    limit = settings.LAGESBILD_IMPORT_MAX_MB * 1024 * 1024
    size = upload_file.size or 0
    if size == 0:
        raise InvalidInput(_("The file is empty."), field="file")
    if size > limit:
        raise InvalidInput(_("The file is %(size)d MB; at most %(max)d MB can be imported at a time. Split it into "
                             "several files.") % {"size": math.ceil(size / 1024**2),
                                                  "max": settings.LAGESBILD_IMPORT_MAX_MB}, field="file")
    name = Path(upload_file.name or "fil").name[:200]
    batch = ImportBatch.objects.create(forum_id=membership.forum_id, organisation_id=membership.organisation_id,
                                       created_by_id=membership.user_id, filename=name, size=size, sha256="",
                                       format="")
    directory = _directory(batch)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ("upload" + (Path(name).suffix.lower()[:10] if Path(name).suffix else ""))
    digest = hashlib.sha256()
    try:
        with open(path, "wb") as out:
            for chunk in upload_file.chunks():
                digest.update(chunk)
                out.write(chunk)
        fmt = reading.guess_format(path, name)
        try:
            layout = reading.read_layout(path, fmt)
        except DomainError:
            raise
        except Exception as exc:  # a file built to break a reader: whatever it raises, it is not a readable file
            log.info("Upload %s could not be read: %r", batch.pk, exc)
            raise InvalidInput(_("The file cannot be read as %(format)s. Save it again from the program it came "
                                 "from, or as CSV.") % {"format": fmt.upper()}, field="file") from exc
        earlier = (ImportBatch.objects.filter(forum_id=membership.forum_id, organisation_id=membership.organisation_id,
                                              sha256=digest.hexdigest(), status=Status.IMPORTED)
                   .exclude(pk=batch.pk).first())
        if earlier is not None:
            when = timezone.localtime(earlier.imported_at or earlier.created_at).strftime("%Y-%m-%d %H:%M")
            raise InvalidInput(_("This file was imported already, on %(when)s (import %(id)d). Undo that import "
                                 "first if you want to import it again.") % {"when": when, "id": earlier.pk},
                               field="file")
        if any("\x00" in header for header in layout.headers):
            raise InvalidInput(_("A column name holds the NUL character, which is not text. Save the file again "
                                 "from the program it came from."), field="file")
        # The first rows are only shown; PostgreSQL cannot store NUL in text, so it is shown as a replacement.
        layout.samples = [[cell.replace("\x00", "\ufffd") for cell in sample] for sample in layout.samples]
        batch.sha256 = digest.hexdigest()
        batch.format = fmt
        batch.path = str(path.relative_to(settings.MEDIA_ROOT))
        batch.layout = layout.as_json()
        batch.mapping = suggested_mapping(membership, layout)
        batch.save()
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        batch.delete()
        raise
    return batch


def suggested_mapping(membership: Membership, layout: reading.Layout) -> dict[str, Any]:
    """Each column's target, from what the forum mapped before, then from known names; each target once."""
    remembered = dict(ImportMemory.objects.filter(organisation_id=membership.organisation_id,
                                                  kind=ImportMemory.Kind.COLUMN)
                      .values_list("source", "target"))
    known = _synonym_index()
    # Candidates as (what the forum taught first, then rank, then the column's place) -> one column per target.
    candidates = []
    for place, header in enumerate(layout.headers):
        if _norm(header) in remembered:
            candidates.append((0, 0, place, header, remembered[_norm(header)]))
        elif _norm(header) in known:
            target, rank = known[_norm(header)]
            candidates.append((1, rank, place, header, target))
    columns: dict[str, str] = {}
    taken: set[str] = set()
    for _source, _rank, _place, header, target in sorted(candidates):
        if header in columns or target in taken or target not in TARGET_KEYS:
            continue
        if (target == "organisation" and not membership.can_administer_forum) or (
                layout.has_geometry and target in {"x", "y"}):
            continue
        columns[header] = target
        taken.add(target)
    for header in layout.headers:
        columns.setdefault(header, "")
    return {"columns": columns, "crs": layout.crs or 0, "swapped": False, "visibility": Deviation.Visibility.FORUM,
            "categories": {}, "skip_duplicates": True}


# --- Step 2: mapping and the dry run --------------------------------------------------------------------

def get_batch(membership: Membership, batch_id: int) -> ImportBatch:
    """One of the organisation's imports. Other organisations' imports are not found, as if they did not exist."""
    _importer(membership)
    batch = ImportBatch.objects.filter(pk=batch_id, forum_id=membership.forum_id,
                                       organisation_id=membership.organisation_id).first()
    if batch is None:
        raise NotFound(_("No such import."))
    return batch


def batches_of(membership: Membership) -> list[ImportBatch]:
    _importer(membership)
    return list(ImportBatch.objects.filter(forum_id=membership.forum_id, organisation_id=membership.organisation_id)
                .select_related("created_by")[:50])


def save_mapping(membership: Membership, batch: ImportBatch, columns: dict[str, str], crs: int, swapped: bool,
                 visibility: str, categories: dict[str, str] | None = None, skip_duplicates: bool = True) -> None:
    """Check the mapping itself (not yet the rows), keep it on the batch and remember it for the forum."""
    if batch.status in {Status.CHECKING, Status.IMPORTING, Status.IMPORTED, Status.UNDONE}:
        raise InvalidInput(_("This import can no longer be changed."), field="mapping")
    layout = reading.Layout.from_json(batch.layout)
    unknown = set(columns) - set(layout.headers)
    if unknown:
        raise InvalidInput(_("The file has no column %(name)s.") % {"name": sorted(unknown)[0]}, field="columns")
    used: dict[str, str] = {}
    for header, target in columns.items():
        if not target:
            continue
        if target not in TARGET_KEYS:
            raise InvalidInput(_("Unknown field: %(name)s.") % {"name": target}, field="columns")
        if target == "organisation" and not membership.can_administer_forum:
            raise Forbidden(_("Only coordinators can import other organisations' deviations."))
        if target in used:
            raise InvalidInput(_("The columns %(a)s and %(b)s are both mapped to %(field)s. Choose one.") % {
                "a": used[target], "b": header, "field": _label(target)}, field="columns")
        used[target] = header
    needed = ["observed_at", "category"] + ([] if layout.has_geometry else ["x", "y"])
    missing = [t for t in needed if t not in used]
    if missing:
        raise InvalidInput(_("Choose the column that holds %(field)s.") % {"field": _label(missing[0])},
                           field="columns")
    if crs and crs not in CRS_CHOICES:
        raise InvalidInput(_("Unknown coordinate system: EPSG:%(code)d.") % {"code": crs}, field="crs")
    if visibility not in {Deviation.Visibility.FORUM, Deviation.Visibility.ORGANISATION}:
        raise InvalidInput(_("Unknown visibility: %(value)s.") % {"value": visibility}, field="visibility")
    known_keys = {c.key for c in deviations.forum_categories(membership.forum)}
    clean_categories = {}
    for value, key in (categories or {}).items():
        if key and key not in known_keys:
            raise InvalidInput(_("Unknown category: %(key)s.") % {"key": key}, field="categories")
        clean_categories[value] = key
    batch.mapping = {"columns": {h: columns.get(h, "") for h in layout.headers}, "crs": crs, "swapped": swapped,
                     "visibility": visibility, "categories": clean_categories or batch.mapping.get("categories", {}),
                     "skip_duplicates": skip_duplicates, "language": translation.get_language() or "sv"}
    batch.status = Status.CHECKING
    batch.save(update_fields=["mapping", "status"])
    # Only what was mapped by hand: what Lägesbild recognises by itself needs no remembering.
    known = _synonym_index()
    _remember(membership, ImportMemory.Kind.COLUMN,
              {h: t for h, t in columns.items() if t and known.get(_norm(h), ("", 0))[0] != t})
    by_name = _category_names(membership.forum)
    _remember(membership, ImportMemory.Kind.CATEGORY,
              {v: k for v, k in clean_categories.items() if k and by_name.get(_norm(v)) != k})
    _write_progress(batch, "checking", 0, 0)
    transaction.on_commit(lambda: _enqueue("check_import", batch.pk))


def _label(target: str) -> str:
    return str(next(t.label for t in TARGETS if t.key == target))


def _remember(membership: Membership, kind: str, pairs: dict[str, str]) -> None:
    now = timezone.now()
    for source, target in pairs.items():
        ImportMemory.objects.update_or_create(organisation_id=membership.organisation_id, kind=kind,
                                              source=_norm(source)[:200],
                                              defaults={"target": target, "updated_at": now,
                                                        "forum_id": membership.forum_id})


def _category_names(forum: Forum) -> dict[str, str]:
    """Each of the forum's categories by its key, Swedish and English name, as file texts are compared."""
    names: dict[str, str] = {}
    for category in deviations.forum_categories(forum):
        for name in (category.key, category.name_sv, category.name_en):
            if name:
                names.setdefault(_norm(name), category.key)
    return names


def _enqueue(name: str, batch_id: int) -> None:
    from lagesbild.interop import tasks

    getattr(tasks, name).enqueue(batch_id)


def start_import(membership: Membership, batch: ImportBatch) -> None:
    """Queue the import of a checked batch."""
    if batch.status != Status.CHECKED:
        raise InvalidInput(_("Check the file before importing it."), field="status")
    if batch.problem_count:
        raise InvalidInput(_("The file has problems. Correct them, or the mapping, and check it again."),
                           field="status")
    if not batch.ok_count:
        raise InvalidInput(_("The file has no rows to import."), field="status")
    batch.status = Status.IMPORTING
    batch.save(update_fields=["status"])
    _write_progress(batch, "importing", 0, batch.ok_count)
    transaction.on_commit(lambda: _enqueue("run_import", batch.pk))


def restart(membership: Membership, batch: ImportBatch) -> None:
    """A step whose worker died (it stopped reporting progress) goes back to the mapping; nothing was written."""
    if not progress(batch)["stalled"]:
        raise InvalidInput(_("The import is still running."), field="status")
    batch.status = Status.UPLOADED
    batch.save(update_fields=["status"])


# --- Reading rows -----------------------------------------------------------------------------------------

@dataclass
class Problem:
    row: int
    column: str
    value: str
    message: str
    kind: str = "error"  # error (blocks the import), duplicate (left out), warning (imported)

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "value": self.value, "message": self.message,
                "kind": self.kind}


@dataclass
class Parsed:
    """A row ready to become a deviation."""

    row: int
    data: deviations.DeviationInput
    category: Category
    organisation_id: int
    status: str
    reported_at: dt.datetime | None

    def staged(self) -> Staged:
        d = self.data
        return Staged(self.row, self.category.pk, self.organisation_id, d.lon, d.lat, d.observed_at,
                      d.observed_until, self.reported_at, d.place_name, d.description, d.severity, d.visibility,
                      self.status)


class Staged(NamedTuple):
    """A checked row as the dry run keeps it on disk for the import: plain values, quick to read back."""

    row: int
    category_id: int
    organisation_id: int
    lon: float
    lat: float
    observed_at: dt.datetime
    observed_until: dt.datetime | None
    reported_at: dt.datetime | None
    place_name: str
    description: str
    severity: str
    visibility: str
    status: str


@dataclass
class Reader:
    """Reads a batch's rows and turns each into a deviation or problems, as the check and the import both do."""

    membership: Membership
    batch: ImportBatch
    layout: reading.Layout = field(init=False)
    columns: dict[str, int] = field(init=False)  # target -> column index
    headers: dict[str, str] = field(init=False)  # target -> header
    zone: ZoneInfo = field(init=False)
    category_values: dict[str, str] = field(default_factory=dict)  # value in the file -> category key or ""
    transformer: Transformer | None = None
    crs: int = 4326
    swapped: bool = False

    def __post_init__(self) -> None:
        self.layout = reading.Layout.from_json(self.batch.layout)
        mapping = self.batch.mapping
        self.columns = {t: self.layout.headers.index(h) for h, t in mapping["columns"].items() if t}
        self.headers = {t: h for h, t in mapping["columns"].items() if t}
        self.targets = [mapping["columns"].get(h, "") for h in self.layout.headers]  # per column
        self.formulas_possible = self.layout.format == "xlsx"
        self.known_choices: dict[tuple[str, str], str | None] = {}
        forum = self.membership.forum
        self.zone = ZoneInfo(forum.timezone)
        self.categories = {c.key: c for c in deviations.forum_categories(forum)}
        self.hidden = deviations.hidden_category_ids(forum)
        self.category_values = dict(mapping.get("categories") or {})
        self.seen_categories: dict[str, str] = {}  # the file's category texts met so far -> category key
        remembered = dict(ImportMemory.objects.filter(organisation_id=self.membership.organisation_id,
                                                      kind=ImportMemory.Kind.CATEGORY)
                          .values_list("source", "target"))
        self.by_name = _category_names(forum)
        self.by_name.update({k: v for k, v in remembered.items() if v in self.categories})
        self.organisations = {_norm(o.name): o.pk for o in Organisation.objects.filter(forum=forum)}
        self.now = timezone.now()
        self.area = shapely.geometry.shape(forum.area) if forum.area else None
        if self.area is not None:
            shapely.prepare(self.area)
        self.default_visibility = mapping.get("visibility") or Deviation.Visibility.FORUM

    # Positions ----------------------------------------------------------------------------------------------

    def set_crs(self, crs: int, swapped: bool) -> None:
        self.crs, self.swapped = crs, swapped
        self.transformer = None if crs == 4326 else _transformer(crs)

    def positions(self, raws: list[tuple[float, float] | None]) -> list[tuple[float, float, bool] | None]:
        """The rows' positions in WGS 84 and whether each lies in the forum's area, a chunk at a time: one call
        into pyproj and shapely for thousands of rows, instead of one each."""
        present = [n for n, raw in enumerate(raws) if raw is not None]
        result: list[tuple[float, float, bool] | None] = [None] * len(raws)
        if not present:
            return result
        first = np.array([raws[n][0] for n in present], dtype=np.float64)  # type: ignore[index]
        second = np.array([raws[n][1] for n in present], dtype=np.float64)  # type: ignore[index]
        xs, ys = (second, first) if self.swapped else (first, second)
        with np.errstate(all="ignore"):
            if self.transformer is not None:
                xs, ys = (np.round(np.asarray(v, dtype=float), 7) for v in self.transformer.transform(xs, ys))
            valid = np.isfinite(xs) & np.isfinite(ys) & (np.abs(xs) <= 180) & (np.abs(ys) <= 90)
            inside = (shapely.intersects_xy(self.area, np.where(valid, xs, 0), np.where(valid, ys, 0)) & valid
                      if self.area is not None else valid)
        for n, lon, lat, within in zip(present, xs.tolist(), ys.tolist(), inside.tolist(), strict=True):
            result[n] = (lon, lat, bool(within))
        return result

    def to_lon_lat(self, x: float, y: float) -> tuple[float, float]:
        if self.swapped:
            x, y = y, x
        if self.transformer is None:
            return x, y
        lon, lat = self.transformer.transform(x, y)
        return round(lon, 7), round(lat, 7)

    def raw_point(self, row: reading.Row) -> tuple[float, float] | None:
        """The row's position as the file gives it, or None."""
        if "x" in self.columns and "y" in self.columns:
            x = _number(row.values[self.columns["x"]])
            y = _number(row.values[self.columns["y"]])
            return (x, y) if x is not None and y is not None else None
        return row.point

    # Rows -----------------------------------------------------------------------------------------------------

    def value(self, row: reading.Row, target: str) -> Any:
        index = self.columns.get(target)
        return row.values[index] if index is not None else None

    def text(self, row: reading.Row, target: str) -> str:
        value = self.value(row, target)
        return "" if value is None else reading.as_text(value).strip() if not isinstance(value, str) else value.strip()

    def category_key(self, value: str) -> str:
        if value not in self.seen_categories:  # each different text is looked up once
            if len(self.seen_categories) >= MAX_CATEGORY_VALUES:
                raise InvalidInput(_("The category column has more than %(max)d different values. Is it the right "
                                     "column?") % {"max": MAX_CATEGORY_VALUES}, field="columns")
            self.seen_categories[value] = self.category_values.get(value, self.by_name.get(_norm(value), ""))
        return self.seen_categories[value]

    def parse(self, row: reading.Row, position: tuple[float, float, bool] | None
              ) -> tuple[Parsed | None, list[Problem]]:
        """The row as a deviation to write (None if it has errors), and its problems (warnings included).
        `position` is the row's (longitude, latitude, inside the forum's area), from `positions`."""
        problems: list[Problem] = []

        def problem(target: str, message: str, value: Any = None) -> None:
            shown = reading.as_text(value if value is not None else self.value(row, target)).replace("\x00", "\ufffd")
            problems.append(Problem(row.number, self.headers.get(target, ""), shown[:120], message))

        for cell, target in zip(row.values, self.targets, strict=True):
            if self.formulas_possible and isinstance(cell, reading.Formula):
                problem(target, _("The cell holds a formula (%(formula)s) saved without its value. Open the file "
                                  "in Excel and save it again, or copy the values.") % {"formula": cell[:60]})
            elif target and isinstance(cell, str) and "\x00" in cell:
                problem(target, _("Text may not contain the NUL character."))
        if problems:
            return None, problems
        # When
        observed_at = self.time(row, "observed_at", problem, required=True)
        if observed_at is not None and "observed_time" in self.columns:
            observed_at = self.with_time_of_day(row, observed_at, problem)
        observed_until = self.time(row, "observed_until", problem)
        reported_at = self.time(row, "reported_at", problem)
        # Where
        lon = lat = 0.0
        inside = False
        if row.geometry_problem and "x" not in self.columns:
            problems.append(Problem(row.number, "", "", row.geometry_problem))
        elif position is None:
            if "x" in self.columns:
                for target in ("x", "y"):
                    if _number(self.value(row, target)) is None:
                        problem(target, _("Not a number.") if self.text(row, target) else _("Empty."))
            else:
                problems.append(Problem(row.number, "", "", _("The feature has no geometry.")))
        else:
            lon, lat, inside = position
            if not (math.isfinite(lon) and math.isfinite(lat)):
                raw = self.raw_point(row)
                problem("x", _("The position cannot be converted from %(crs)s.") % {
                    "crs": CRS_CHOICES.get(self.crs, self.crs)}, value=f"{raw[0]}, {raw[1]}" if raw else "")
                lon = lat = 0.0
        # What
        category_text = self.text(row, "category")
        category: Category | None = None
        if not category_text:
            problem("category", _("Empty."))
        else:
            key = self.category_key(category_text)
            category = self.categories.get(key)
            if category is None:
                problem("category", _("The category “%(value)s” is not linked to one of the forum's categories. "
                                      "Choose one for it below.") % {"value": category_text[:80]})
            elif category.pk in self.hidden:
                problem("category", _("The forum no longer uses the category %(name)s. Choose another.") % {
                    "name": category.name})
        severity = self.choice(row, "severity", Deviation.Severity, Deviation.Severity.MEDIUM, problem)
        status = self.choice(row, "status", Deviation.Status, Deviation.Status.NEW, problem)
        visibility = self.choice(row, "visibility", Deviation.Visibility, self.default_visibility, problem)
        if visibility == Deviation.Visibility.NAMED:
            problem("visibility", _("“Named organisations” cannot be imported, since the file does not say which. "
                                    "Choose the whole forum or your organisation only."))
        organisation_id = self.membership.organisation_id
        organisation_text = self.text(row, "organisation")
        if organisation_text:
            found = self.organisations.get(_norm(organisation_text))
            if found is None:
                problem("organisation", _("No organisation in the forum is called “%(name)s”.") % {
                    "name": organisation_text[:80]})
            else:
                organisation_id = found
        if problems or observed_at is None or category is None:
            return None, problems
        data = deviations.DeviationInput(
            category=category.key, lon=lon, lat=lat, observed_at=observed_at, observed_until=observed_until,
            place_name=self.text(row, "place_name"), description=self.text(row, "description"),
            severity=severity, visibility=visibility)
        try:
            warnings = deviations.check_values(self.membership.forum, data, self.now, inside=inside)
        except DomainError as exc:
            target = {"lon": "x", "lat": "y"}.get(exc.field or "", exc.field or "")
            value = f"{lon:.6f}, {lat:.6f}" if target in {"x", "y"} else None
            message = exc.message
            raw = self.raw_point(row)
            if target == "x" and raw is not None and _in_forum(self.membership.forum, *self.to_lon_lat(raw[1], raw[0])):
                message += " " + _("With x and y the other way round it would lie inside the area: are the columns "
                                   "swapped on this row?")
            problem(target, message, value=value)
            return None, problems
        return Parsed(row.number, data, category, organisation_id, status, reported_at), [
            Problem(row.number, self.headers.get(w["field"], ""), w["text"], w["message"], "warning")
            for w in warnings]

    def time(self, row: reading.Row, target: str, problem: Any, required: bool = False) -> dt.datetime | None:
        value = self.value(row, target)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                problem(target, _("Empty."))
            return None
        parsed = _datetime(value)
        if parsed is None:
            problem(target, _("Not a date and time Lägesbild recognises. Write it as 2024-03-05 14:30."))
            return None
        return parsed if parsed.tzinfo is not None else _localised(parsed, self.zone)

    def with_time_of_day(self, row: reading.Row, observed_at: dt.datetime, problem: Any) -> dt.datetime | None:
        value = self.value(row, "observed_time")
        if value is None or (isinstance(value, str) and not value.strip()):
            return observed_at
        clock = _time_of_day(value)
        if clock is None:
            problem("observed_time", _("Not a time of day. Write it as 14:30."))
            return None
        local = observed_at.astimezone(self.zone).replace(tzinfo=None)
        return _localised(dt.datetime.combine(local.date(), clock), self.zone)

    def choice(self, row: reading.Row, target: str, choices: Any, default: str, problem: Any) -> str:
        text = self.text(row, target)
        if not text:
            return default
        key = (target, text)
        if key not in self.known_choices:
            self.known_choices[key] = _choice_names(choices).get(_norm(text))
        found = self.known_choices[key]
        if found is None:
            names = ", ".join(str(label) for label in choices.labels)
            problem(target, _("Not one of: %(names)s.") % {"names": names})
            return default
        return found


@lru_cache(maxsize=16)
def _transformer(crs: int) -> Transformer:
    return Transformer.from_crs(f"EPSG:{crs}", "EPSG:4326", always_xy=True)


@lru_cache(maxsize=8)
def _choice_names(choices: Any) -> dict[str, str]:
    """Every name of a choice (its key, its Swedish and its English label) -> its key."""
    names: dict[str, str] = {}
    for value, label in choices.choices:
        names[_norm(value)] = str(value)
        for language in ("sv", "en"):
            with translation.override(language):
                names[_norm(str(label))] = str(value)
    return names


_NUMBER_SPACES = re.compile(r"[\s\u00a0\u202f']")


def _number(value: Any) -> float | None:
    """A number from a cell: 18.07, 18,07 (a Swedish decimal comma), 6 578 123,45 (spaces between thousands)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = _NUMBER_SPACES.sub("", value.strip()).replace("\u2212", "-")
        if "," in text and "." in text:
            text = text.replace(".", "").replace(",", ".") if text.rfind(",") > text.rfind(".") else text.replace(
                ",", "")
        text = text.replace(",", ".")
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text):
            return None
        number = float(text)
    else:
        return None
    return number if math.isfinite(number) else None


_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_SWEDISH_CLOCK = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T]+(?:kl\.?\s*)?(\d{1,2})[.:](\d{2})(?:[.:](\d{2}))?)?$")


def _datetime(value: Any) -> dt.datetime | None:
    """A date and time from a cell: a spreadsheet's date, an Excel date serial (45357.6 is 2024-03-06 14:24),
    ISO 8601 with or without a time zone, or Swedish "2024-03-05 kl. 14.30". Without a zone it is local."""
    if isinstance(value, dt.datetime):  # a spreadsheet's date: to the second, as Excel's fractions are not exact
        return (value + dt.timedelta(microseconds=500_000)).replace(microsecond=0)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str) and value[4:5] == "-" and (len(value.strip()) == 10 or ":" in value[11:]):
        # ISO 8601, by far the most common: the quick way first (not "14.30", which it would read as 14:00:00.3)
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    if isinstance(value, int) and not isinstance(value, bool) and 20000101 <= value <= 21001231:
        value = str(value)  # 20240305 typed into a spreadsheet is a number
    number = _number(value)
    if number is not None and not (isinstance(value, str) and re.fullmatch(r"\d{8}", value.strip())):
        # Serials between 1954 and 2119; anything else is not a date a forum records.
        if 20000 <= number <= 80000:
            return _EXCEL_EPOCH + dt.timedelta(seconds=round(number * 86400))
        return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    match = _SWEDISH_CLOCK.match(text)
    try:
        if match:
            date, hour, minute, second = match.groups()
            clock = f"{int(hour):02d}:{minute}:{second or '00'}" if hour else "00:00:00"
            return dt.datetime.fromisoformat(f"{date}T{clock}")
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _time_of_day(value: Any) -> dt.time | None:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, dt.datetime):
        return value.time()
    number = _number(value) if not isinstance(value, str) or not re.search(r"[.:]\d\d$", value.strip()) else None
    if number is not None and 0 <= number < 1:  # an Excel time: a fraction of a day
        seconds = round(number * 86400)
        return dt.time(seconds // 3600 % 24, seconds // 60 % 60, seconds % 60)
    match = re.fullmatch(r"(?:kl\.?\s*)?(\d{1,2})[.:]?(\d{2})(?:[.:](\d{2}))?", str(value).strip())
    if not match:
        return None
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return dt.time(hour, minute, second)


def _localised(naive: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A local wall-clock time in the forum's zone. At the autumn change, 02:30 happens twice; the first is taken."""
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=zone).astimezone(dt.UTC)


# --- Coordinate systems ---------------------------------------------------------------------------------------

def detect_crs(forum: Forum, points: list[tuple[float, float]]) -> tuple[int, bool, float]:
    """The coordinate system and axis order under which most of the points lie in the forum's area (or, with no
    area, in Sweden): (EPSG code, axes swapped, share of the points inside)."""
    if not points:
        return 4326, False, 0.0
    area = shapely.geometry.shape(forum.area) if forum.area else shapely.box(*_SWEDEN)
    shapely.prepare(area)
    first = np.array([p[0] for p in points], dtype=float)
    second = np.array([p[1] for p in points], dtype=float)
    fits: list[tuple[float, int, bool, float, float]] = []  # share, crs, swapped, mean lon, mean lat
    with np.errstate(all="ignore"):
        for crs in CRS_CHOICES:
            for swapped in (False, True):
                xs, ys = (second, first) if swapped else (first, second)
                lon, lat = (xs, ys) if crs == 4326 else _transformer(crs).transform(xs, ys)
                lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
                valid = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
                inside = shapely.intersects_xy(area, np.where(valid, lon, 0), np.where(valid, lat, 0)) & valid
                if inside.any():
                    fits.append((float(inside.sum()) / len(points), crs, swapped, float(lon[inside].mean()),
                                 float(lat[inside].mean())))
    if not fits:
        return 4326, False, 0.0
    share = max(f[0] for f in fits)
    best = [f for f in fits if f[0] >= share - 0.02]
    # Several systems that put the points in different places (the local SWEREF 99 zones look alike, and
    # without a forum area anywhere in Sweden will do): Lägesbild cannot tell, so the person must say.
    if any(abs(f[3] - best[0][3]) > 0.01 or abs(f[4] - best[0][4]) > 0.01 for f in best):
        names = ", ".join(sorted({CRS_CHOICES[f[1]] for f in best}))
        raise InvalidInput(_("The positions fit several coordinate systems (%(names)s). Choose the file's "
                             "coordinate system.") % {"names": names}, field="crs")
    return best[0][1], best[0][2], best[0][0]


_SWEDEN = (10.0, 55.0, 24.5, 69.5)


def _in_forum(forum: Forum, lon: float, lat: float) -> bool:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        return False
    if forum.area:
        return geometry.area_contains(forum.area, lon, lat)
    return _SWEDEN[0] <= lon <= _SWEDEN[2] and _SWEDEN[1] <= lat <= _SWEDEN[3]


# --- The check and the import ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    rows: int = 0
    ok: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0  # rows with an error
    duplicates: int = 0

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_STORED_PROBLEMS:
            self.problems.append(problem)


def _fingerprint(category_id: int, observed_at: dt.datetime, lon: float, lat: float, description: str,
                 place_name: str) -> tuple[Any, ...]:
    return (category_id, observed_at.replace(microsecond=0), round(lon, 6), round(lat, 6), description.strip(),
            place_name.strip())


def _estimate_rows(batch: ImportBatch, layout: reading.Layout) -> int:
    """About how many rows the file has, for the progress bar, without parsing it."""
    path = _file(batch)
    if layout.format == "csv":
        with open(path, "rb") as handle:
            return max(0, sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1)
    if layout.format == "geojson":
        with open(path, "rb") as handle:
            return sum(chunk.count(b'"Feature"') for chunk in iter(lambda: handle.read(1 << 20), b""))
    return 0


class Deduplicator:
    """Leaves out rows that repeat a row above them, or a deviation already in the forum that the member can
    see (one that they cannot see is never compared, so the check reveals nothing about it)."""

    def __init__(self, membership: Membership, outcome: Outcome, skip: bool) -> None:
        self.visible = deviations.visible_deviations(membership)
        self.outcome = outcome
        self.skip = skip
        # The rows met so far, by the hash of their fingerprint: a million rows in about a hundred megabytes.
        # Two different rows share a 64-bit hash about once in 10^13 pairs.
        self.seen: dict[int, int] = {}

    def __call__(self, chunk: list[Staged]) -> list[Staged]:
        existing: dict[tuple[Any, ...], int] = {}
        if chunk:
            for pk, category_id, observed_at, lon, lat, description, place_name in self.candidates(chunk):
                existing[_fingerprint(category_id, observed_at, lon, lat, description, place_name)] = pk
        kept = []
        for row in chunk:
            print_ = _fingerprint(row.category_id, row.observed_at, row.lon, row.lat, row.description,
                                  row.place_name)
            if print_ in existing:
                self.duplicate(row.row, _("Already in Lägesbild (deviation %(id)d).") % {"id": existing[print_]})
            elif hash(print_) in self.seen:
                self.duplicate(row.row, _("The same as row %(row)d.") % {"row": self.seen[hash(print_)]})
            else:
                self.seen[hash(print_)] = row.row
                kept.append(row)
        self.outcome.ok += len(kept)
        return kept

    def candidates(self, chunk: list[Staged]) -> Any:
        """The visible deviations at the same moments as the chunk's rows, found through the time index: the
        few in the chunk's period if that is all there are (a file in time order, or a new forum), otherwise
        those at exactly its rows' times."""
        fields = ("pk", "category_id", "observed_at", "lon", "lat", "description", "place_name")
        times = {row.observed_at for row in chunk}
        period = self.visible.filter(observed_at__gte=min(times), observed_at__lte=max(times))
        within = period.count()
        if within == 0:
            return []
        if within <= 4 * CHUNK:
            return [row for row in period.values_list(*fields) if row[2] in times]
        return self.visible.filter(observed_at__in=list(times)).values_list(*fields)

    def duplicate(self, row: int, message: str) -> None:
        self.outcome.duplicates += 1
        self.outcome.add(Problem(row, "", "", message, "duplicate" if self.skip else "error"))
        if not self.skip:
            self.outcome.problem_count += 1


def _read(reader: Reader, outcome: Outcome, total: int) -> Iterator[list[Staged]]:
    """Every row of the batch's file, parsed and checked, in chunks without duplicates; problems and counts
    land in `outcome`."""
    batch = reader.batch
    deduplicate = Deduplicator(reader.membership, outcome, bool(batch.mapping.get("skip_duplicates", True)))
    rows = reading.read_rows(_file(batch), reader.layout)
    while raw_rows := list(itertools.islice(rows, CHUNK)):
        if outcome.rows + len(raw_rows) > settings.LAGESBILD_IMPORT_MAX_ROWS:
            raise InvalidInput(_("The file has more than %(max)d rows. Split it into several files.") % {
                "max": settings.LAGESBILD_IMPORT_MAX_ROWS}, field="file")
        outcome.rows += len(raw_rows)
        chunk: list[Staged] = []
        for row, position in zip(raw_rows, reader.positions([reader.raw_point(r) for r in raw_rows]), strict=True):
            parsed, problems = reader.parse(row, position)
            for item in problems:
                outcome.add(item)
            if parsed is None:
                outcome.problem_count += 1
            else:
                chunk.append(parsed.staged())
        yield deduplicate(chunk)
        _write_progress(batch, "checking", outcome.rows, max(total, outcome.rows))


def _reader_for(batch: ImportBatch) -> tuple[Reader, Membership]:
    if batch.created_by_id is None:
        raise Forbidden(_("The person who started the import can no longer import in this forum."))
    membership = Membership.objects.select_related("forum").filter(
        forum_id=batch.forum_id, user_id=batch.created_by_id, organisation_id=batch.organisation_id,
        is_active=True).first()
    if membership is None or not membership.can_import:
        raise Forbidden(_("The person who started the import can no longer import in this forum."))
    reader = Reader(membership, batch)
    return reader, membership


def _position_sample(reader: Reader, limit: int = 500) -> list[tuple[float, float]]:
    sample = []
    for row in reading.read_rows(_file(reader.batch), reader.layout):
        point = reader.raw_point(row)
        if point is not None:
            sample.append(point)
        if len(sample) >= limit:
            break
    return sample


def check(batch_id: int) -> None:
    """The dry run: read every row, keep each problem, write nothing. Runs in the background worker."""
    batch = ImportBatch.objects.select_related("forum").get(pk=batch_id)
    if batch.status != Status.CHECKING:
        return
    try:
        reader, _membership = _reader_for(batch)
        with translation.override(batch.mapping.get("language") or settings.LANGUAGE_CODE):
            outcome = _check(batch, reader)
    except DomainError as exc:
        _fail(batch, exc.message, back_to=Status.UPLOADED)
        return
    except Exception:
        log.exception("Checking import %s failed", batch_id)
        _fail(batch, _("The file could not be checked. Nothing was imported."), back_to=Status.FAILED)
        return
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=Status.CHECKED, row_count=outcome.rows, ok_count=outcome.ok, problem_count=outcome.problem_count,
        duplicate_count=outcome.duplicates, problems=[p.as_json() for p in outcome.problems],
        mapping=batch.mapping, checked_at=timezone.now(), error="")


def _check(batch: ImportBatch, reader: Reader) -> Outcome:
    mapping = batch.mapping
    crs = int(mapping.get("crs") or 0)
    if crs:
        reader.set_crs(crs, bool(mapping.get("swapped")))
    else:
        sample = _position_sample(reader)
        if not sample and not any(True for _row in reading.read_rows(_file(batch), reader.layout)):
            raise InvalidInput(_("The file has a header row but no rows."), field="file")
        found, swapped, share = detect_crs(batch.forum, sample)
        if share == 0:
            raise InvalidInput(_("None of the first positions lies in the forum's area in any coordinate system "
                                 "Lägesbild knows. Check the columns chosen for x and y."), field="crs")
        reader.set_crs(found, swapped)
        mapping["detected"] = {"crs": found, "swapped": swapped, "share": round(share, 3)}
    mapping["used_crs"] = {"crs": reader.crs, "swapped": reader.swapped}
    # What the dry run compares the rows with; the import compares them again with what came in after it.
    mapping["newest_at_check"] = deviations.newest_deviation_id()
    outcome = Outcome()
    total = _estimate_rows(batch, reader.layout)
    # The checked rows wait on disk beside the file, so the import writes them without parsing the file again.
    with open(_staged_path(batch), "wb") as staged:  # one line of JSON per chunk
        for chunk in _read(reader, outcome, total):
            staged.write(orjson.dumps([tuple(row) for row in chunk]) + b"\n")
    mapping["categories"] = reader.seen_categories
    if outcome.rows == 0:
        raise InvalidInput(_("The file has a header row but no rows."), field="file")
    return outcome


def _fail(batch: ImportBatch, message: str, back_to: str) -> None:
    ImportBatch.objects.filter(pk=batch.pk).update(status=back_to, error=message)


def _forget_contents(batch: ImportBatch) -> None:
    """Once imported (or undone), the batch keeps its counts but none of the file's text: the first rows and
    the problems' values could hold what the import left out, personal data among it."""
    layout = dict(batch.layout)
    layout["samples"] = []
    problems = [{**p, "value": ""} for p in batch.problems]
    ImportBatch.objects.filter(pk=batch.pk).update(layout=layout, problems=problems)


def _staged_path(batch: ImportBatch) -> Path:
    return _directory(batch) / "checked.pickle"


def _staged_chunks(batch: ImportBatch) -> Iterator[list[Staged]]:
    """The rows the dry run kept, a chunk to a line of JSON (data, never code, whoever could write the file)."""
    when = dt.datetime.fromisoformat
    with open(_staged_path(batch), "rb") as staged:
        for line in staged:
            yield [Staged(row, category, organisation, lon, lat, when(observed), when(until) if until else None,
                          when(reported) if reported else None, place, text, severity, visibility, status)
                   for (row, category, organisation, lon, lat, observed, until, reported, place, text, severity,
                        visibility, status) in orjson.loads(line)]


def run_import(batch_id: int) -> None:
    """Write every checked row of a batch in one transaction, or nothing. Runs in the background worker.

    What may have changed since the dry run is checked again as the rows are written: the forum's categories,
    area and organisations, and deviations reported meanwhile (duplicates). Anything new stops the import."""
    batch = ImportBatch.objects.select_related("forum").get(pk=batch_id)
    if batch.status != Status.IMPORTING:
        return
    try:
        reader, membership = _reader_for(batch)
        with translation.override(batch.mapping.get("language") or settings.LANGUAGE_CODE):
            outcome = Outcome()
            still = _StillValid(reader)
            reported_since = _reported_since_check(membership, batch)
            writer = bulk.Writer(membership, batch.pk, Deviation.Source.IMPORT, expected=batch.ok_count)
            with transaction.atomic():
                with writer:
                    for chunk in _staged_chunks(batch):
                        outcome.rows += len(chunk)
                        rows = still(chunk, outcome)
                        if reported_since:
                            rows = [row for row in rows if not _duplicate_since(row, reported_since, outcome)]
                        if outcome.problem_count:
                            raise _Refused(outcome)
                        writer.write(rows)
                        _write_progress(batch, "importing", writer.written, batch.ok_count)
                now = timezone.now()
                ImportBatch.objects.filter(pk=batch.pk).update(
                    status=Status.IMPORTED, imported_count=writer.written, imported_at=now, error="",
                    duplicate_count=batch.duplicate_count + outcome.duplicates)
                audit.record(membership, AuditEvent.Action.IMPORT, batch, {"format": batch.format})
                deviations.import_changed(batch.forum_id, batch.pk)
    except _Refused as refused:
        ImportBatch.objects.filter(pk=batch.pk).update(
            status=Status.CHECKED, problem_count=refused.outcome.problem_count,
            problems=[p.as_json() for p in refused.outcome.problems],
            error=_("Something changed since the check (a category, the forum's area, or a deviation). Nothing "
                    "was imported; see the problems below."))
        return
    except DomainError as exc:
        _fail(batch, exc.message + " " + _("Nothing was imported."), back_to=Status.CHECKED)
        return
    except Exception:
        log.exception("Import %s failed", batch_id)
        _fail(batch, _("The import failed. Nothing was imported."), back_to=Status.FAILED)
        return
    _remove_files(batch)  # the rows are in; the file is not kept longer than it is needed
    _forget_contents(batch)


def _reported_since_check(membership: Membership, batch: ImportBatch) -> dict[tuple[Any, ...], int]:
    """The deviations the member can see that came in after the dry run compared the file with the forum
    (a colleague's report, another import), by their fingerprints: the rows they repeat are left out too."""
    newest = int(batch.mapping.get("newest_at_check") or 0)
    return {_fingerprint(category_id, observed_at, lon, lat, description, place_name): pk
            for pk, category_id, observed_at, lon, lat, description, place_name in
            deviations.visible_deviations(membership).filter(pk__gt=newest).values_list(
                "pk", "category_id", "observed_at", "lon", "lat", "description", "place_name").iterator()}


def _duplicate_since(row: Staged, reported: dict[tuple[Any, ...], int], outcome: Outcome) -> bool:
    pk = reported.get(_fingerprint(row.category_id, row.observed_at, row.lon, row.lat, row.description,
                                   row.place_name))
    if pk is None:
        return False
    outcome.duplicates += 1
    outcome.add(Problem(row.row, "", "", _("Already in Lägesbild (deviation %(id)d).") % {"id": pk}, "duplicate"))
    return True


class _StillValid:
    """The checks of the dry run that the forum's later changes could undo: categories hidden, organisations
    gone, the area redrawn, personal data refused."""

    def __init__(self, reader: Reader) -> None:
        forum = reader.membership.forum
        self.reader = reader
        self.categories = {c.pk: c for c in deviations.forum_categories(forum)}
        self.hidden = deviations.hidden_category_ids(forum)
        self.organisations = set(Organisation.objects.filter(forum=forum).values_list("pk", flat=True))
        self.block_personal_data = forum.block_personal_data

    def __call__(self, chunk: list[Staged], outcome: Outcome) -> list[Staged]:
        inside = shapely.intersects_xy(self.reader.area, [r.lon for r in chunk], [r.lat for r in chunk]).tolist() \
            if self.reader.area is not None and chunk else [True] * len(chunk)
        kept = []
        for row, within in zip(chunk, inside, strict=True):
            category = self.categories.get(row.category_id)
            if category is None or category.pk in self.hidden:
                message = _("The forum no longer uses the category %(name)s. Choose another.") % {
                    "name": category.name if category else row.category_id}
            elif row.organisation_id not in self.organisations:
                message = _("The organisation is no longer in the forum.")
            elif not within:
                message = _("The position lies outside the forum's area (%(forum)s).") % {
                    "forum": self.reader.membership.forum.name}
            elif self.block_personal_data and (personal_data.find_personal_data(row.place_name)
                                               or personal_data.find_personal_data(row.description)):
                message = _("The forum now refuses text that looks like personal data, and this row has some.")
            else:
                kept.append(row)
                continue
            outcome.problem_count += 1
            outcome.add(Problem(row.row, "", "", message))
        return kept


class _Refused(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__("problems")
        self.outcome = outcome


# --- Step 4: undo -------------------------------------------------------------------------------------------

def undo(membership: Membership, batch: ImportBatch) -> int:
    """Withdraw every deviation the batch brought in. Returns how many."""
    with transaction.atomic():
        now = timezone.now()
        # The status is checked in the write, so two people pressing undo at once undo it once.
        if not ImportBatch.objects.filter(pk=batch.pk, status=Status.IMPORTED).update(
                status=Status.UNDONE, undone_at=now, undone_by_id=membership.user_id):
            raise InvalidInput(_("Only a finished import can be undone."), field="status")
        count = deviations.withdraw_imported(batch.pk, now)
        audit.record(membership, AuditEvent.Action.IMPORT_UNDONE, batch, {"format": batch.format})
        deviations.import_changed(batch.forum_id, batch.pk)
    batch.status, batch.undone_at = Status.UNDONE, now
    _forget_contents(batch)
    return count


def changed_since_import(batch: ImportBatch) -> int:
    """How many of the batch's deviations someone changed after the import (undoing withdraws them too)."""
    return deviations.changed_since_import(batch.pk)


def discard(membership: Membership, batch: ImportBatch) -> None:
    """Throw away an upload that was not imported."""
    if batch.status in {Status.CHECKING, Status.IMPORTING, Status.IMPORTED, Status.UNDONE}:
        raise InvalidInput(_("This import cannot be thrown away now."), field="status")
    _remove_files(batch)
    batch.delete()


def remove_abandoned(older_than: dt.timedelta = dt.timedelta(days=7)) -> int:
    """Uploads never imported, and their files, go after a week: a file of deviations is not kept for nothing."""
    # A check or an import still "running" after a week died with its worker; nothing of it was written.
    stale = ImportBatch.objects.filter(created_at__lt=timezone.now() - older_than,
                                       status__in=[Status.UPLOADED, Status.CHECKED, Status.FAILED, Status.CHECKING,
                                                   Status.IMPORTING])
    count = 0
    for batch in stale:
        _remove_files(batch)
        batch.delete()
        count += 1
    return count
