"""Exports of the map's filter: CSV for Swedish Excel, XLSX, GeoJSON and GeoPackage, in WGS 84 or SWEREF 99 TM.

Every export reads `visible_deviations` (what the member may see, nothing else), is written to the audit log
before its first byte, and is produced row by row: CSV, XLSX and GeoJSON are streamed to the client as they
are written, a GeoPackage (an SQLite file) is written to a temporary file in batches and then streamed. None
of them holds more than one batch of rows in memory, however many there are.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import sqlite3
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import shapely
import shapely.geometry
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from stream_zip import ZIP_32, ZIP_64, stream_zip

from lagesbild import geometry
from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.csvfile import cell as safe_cell
from lagesbild.deviations import services as deviations
from lagesbild.deviations.fields import forum_fields
from lagesbild.deviations.models import CategoryField, Deviation
from lagesbild.errors import InvalidInput
from lagesbild.forums.models import Membership

FORMATS = ("csv", "xlsx", "geojson", "gpkg")
CRS = (4326, 3006)  # WGS 84 longitude/latitude, SWEREF 99 TM easting/northing in metres
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet, less the header row
BATCH = 2000
LAYER = "avvikelser"  # the GeoPackage's one layer

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
}

# What each row holds, read in one query; the names of the related rows are joined in.
FIELDS = ("pk", "category__key", "category__name_sv", "category__name_en", "category__parent__name_sv",
          "category__parent__name_en", "observed_at", "observed_until", "reported_at", "organisation__name",
          "place_name", "description", "severity", "status", "visibility", "lon", "lat", "sweref_x", "sweref_y",
          "fields", "shape")


@dataclass(frozen=True)
class Column:
    key: str  # the property's name in GeoJSON and GeoPackage
    header: str  # the column's Swedish (or English) name in CSV and XLSX
    kind: str = "text"  # text, number, decimal, time, geometry (a line or area: WKT in CSV and XLSX, the
    # geometry itself in GeoJSON and GeoPackage)


@dataclass
class Export:
    filename: str
    content_type: str
    count: int
    chunks: Iterator[bytes] | None = None  # streamed as written
    file: IO[bytes] | None = None  # or a finished file, already unlinked, streamed and then closed


def columns(crs: int, own: Sequence[CategoryField] = ()) -> list[Column]:
    """The export's columns; `own`, the forum's own fields, each under its label, before the position."""
    x, y = (_("Longitude"), _("Latitude")) if crs == 4326 else (_("Easting (SWEREF 99 TM)"),
                                                               _("Northing (SWEREF 99 TM)"))
    return [
        Column("id", _("Id"), "number"),
        Column("category", _("Category")),
        Column("categoryKey", _("Category key")),
        Column("mainCategory", _("Main category")),
        Column("observedAt", _("Observed"), "time"),
        Column("observedUntil", _("Observed until"), "time"),
        Column("reportedAt", _("Reported"), "time"),
        Column("organisation", _("Reported by")),
        Column("placeName", _("Place")),
        Column("description", _("Description")),
        Column("severity", _("Severity")),
        Column("status", _("Status")),
        Column("visibility", _("Visibility")),
        *(Column(f"field_{d.key}", d.label, "decimal" if d.kind == CategoryField.Kind.NUMBER else "text")
          for d in own),
        Column("shape", _("Line or area (WKT)"), "geometry"),
        Column("x", x, "number"),  # the position last: GeoJSON and GeoPackage take it for the geometry
        Column("y", y, "number"),
    ]


def export_deviations(membership: Membership, flt: deviations.DeviationFilter, fmt: str, crs: int = 4326
                      ) -> Export:
    """The deviations of the filter that the member may see, in `fmt` and `crs`; audited before it is read."""
    if fmt not in FORMATS:
        raise InvalidInput(_("Choose CSV, XLSX, GeoJSON or GeoPackage."), field="format")
    if crs not in CRS:
        raise InvalidInput(_("Choose the coordinate system 4326 (WGS 84) or 3006 (SWEREF 99 TM)."), field="crs")
    forum = membership.forum
    queryset = deviations.apply_filter(deviations.visible_deviations(membership), forum, flt)
    count = queryset.count()
    if fmt == "xlsx" and count > XLSX_MAX_ROWS:
        raise InvalidInput(_("An Excel sheet holds at most %(max)s rows, and the filter matches %(count)s. Narrow "
                             "the filter, or export CSV.") % {"max": XLSX_MAX_ROWS, "count": count}, field="format")
    _audit(membership, queryset, flt, fmt, crs)
    stamp = timezone.localtime(timezone.now(), ZoneInfo(forum.timezone)).strftime("%Y-%m-%d")
    suffix = "" if crs == 4326 else "-sweref99tm"
    filename = f"{forum.slug}-avvikelser-{stamp}{suffix}.{fmt}"
    own = list(forum_fields(forum))
    rows = _rows(queryset, ZoneInfo(forum.timezone), crs, own)
    cols = columns(crs, own)
    if fmt == "csv":
        return Export(filename, CONTENT_TYPES[fmt], count, chunks=_csv(cols, rows))
    if fmt == "xlsx":
        return Export(filename, CONTENT_TYPES[fmt], count, chunks=_xlsx(cols, rows))
    if fmt == "geojson":
        return Export(filename, CONTENT_TYPES[fmt], count, chunks=_geojson(cols, rows, crs))
    kind = "GEOMETRY" if queryset.filter(shape_min_lon__isnull=False).exists() else "POINT"
    return Export(filename, CONTENT_TYPES[fmt], count, file=_gpkg(cols, rows, crs, LAYER, kind))


def _audit(membership: Membership, queryset: QuerySet[Deviation], flt: deviations.DeviationFilter, fmt: str,
           crs: int) -> None:
    """One export event that every coordinator may read, and a read event for each restricted deviation in it.

    The export event says only what any member could know: the format and the filter's period and choices, but
    not the text searched for, the box, or how many rows there were (which would count restricted deviations
    for readers who may not see them). Each restricted deviation exported is read in full, so it gets the same
    read event as opening it on the map: its own organisation sees who took it, and nobody else sees the event.
    """
    described = {key: value for key, value in {
        "from": flt.start.isoformat() if flt.start else None, "to": flt.end.isoformat() if flt.end else None,
        "category": list(flt.categories), "organisation": list(flt.organisations), "status": list(flt.statuses),
        "text search": bool(flt.q), "map view": bool(flt.bbox)}.items() if value}
    audit.record(membership, AuditEvent.Action.EXPORT, membership.forum,
                 {"what": "deviations", "format": fmt, "crs": crs, "filter": described})
    restricted = queryset.exclude(visibility=Deviation.Visibility.FORUM).values_list("pk", flat=True)
    audit.record_reads(membership, "deviation", list(restricted), {"via": f"export ({fmt})"})


def _rows(queryset: QuerySet[Deviation], zone: ZoneInfo, crs: int, own: Sequence[CategoryField] = ()
          ) -> Iterator[list[Any]]:
    """One list of values per deviation, in the order of `columns`: names in the reader's language, times in
    the forum's zone."""
    english = (translation.get_language() or "sv").startswith("en")
    severities, statuses = dict(Deviation.Severity.choices), dict(Deviation.Status.choices)
    visibilities = dict(Deviation.Visibility.choices)
    yes_no = {True: (True, str(_("Yes"))), False: (False, str(_("No")))}
    for (pk, key, name_sv, name_en, parent_sv, parent_en, observed_at, observed_until, reported_at, organisation,
         place_name, description, severity, status, visibility, lon, lat, sweref_x, sweref_y, values, drawn) in (
            queryset.order_by("observed_at", "pk").values_list(*FIELDS).iterator(chunk_size=BATCH)):
        name = name_en if english and name_en else name_sv
        parent = (parent_en if english and parent_en else parent_sv) or name
        x, y = (round(lon, 6), round(lat, 6)) if crs == 4326 else (round(sweref_x, 2), round(sweref_y, 2))
        yield [pk, name, key, parent, _local(observed_at, zone), _local(observed_until, zone),
               _local(reported_at, zone),
               organisation, place_name, description, (severity, str(severities[severity])),
               (status, str(statuses[status])), (visibility, str(visibilities[visibility])),
               *(_own_value((values or {}).get(d.key), yes_no) for d in own), _shape_value(drawn, crs), x, y]


def _shape_value(drawn: dict[str, Any] | None, crs: int) -> tuple[dict[str, Any], str] | None:
    """A line or area in the export's coordinate system: (GeoJSON geometry, WKT). x and y stay its anchor."""
    if not drawn:
        return None
    geom = shapely.geometry.shape(drawn)
    if crs == 3006:
        geom = shapely.transform(geometry.sweref99tm_shape(geom), lambda xy: np.round(xy, 2))
    mapped = geometry.as_geojson(geom)
    return mapped, shapely.to_wkt(geom, rounding_precision=7 if crs == 4326 else 2, trim=True)


def _own_value(value: Any, yes_no: dict[bool, tuple[bool, str]]) -> Any:
    """A field of the forum's own: yes and no in words (in CSV and Excel), as true and false elsewhere."""
    return yes_no[value] if isinstance(value, bool) else value


def _local(when: dt.datetime | None, zone: ZoneInfo) -> dt.datetime | None:
    """In the forum's time, to the second (every format holds seconds; not all hold fractions)."""
    return when.astimezone(zone).replace(microsecond=0) if when is not None else None


def _display(value: Any) -> Any:
    """A choice as people read it (its label), other values as they are."""
    return value[1] if isinstance(value, tuple) else value


def _stored(value: Any) -> Any:
    """A choice as programs read it (its key)."""
    return value[0] if isinstance(value, tuple) else value


# --- CSV for Swedish Excel --------------------------------------------------------------------------------------

def _csv(cols: list[Column], rows: Iterator[list[Any]]) -> Iterator[bytes]:
    """UTF-8 with a byte-order mark (so Excel reads å, ä and ö), semicolons, decimal commas, local times, and
    free text that Excel will not run as a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([safe_cell(c.header) for c in cols])  # a field's label is the forum's text, not ours
    first = True
    for n, row in enumerate(rows, start=1):
        writer.writerow([_csv_value(column, value) for column, value in zip(cols, row, strict=True)])
        if n % BATCH == 0:
            yield _take(buffer, first)
            first = False
    yield _take(buffer, first)


def _take(buffer: io.StringIO, first: bool) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return ("\ufeff" + text if first else text).encode("utf-8")


def _csv_value(column: Column, value: Any) -> str:
    value = _display(value)
    if value is None:
        return ""
    if column.kind == "time":  # to the second when it has seconds, so that an import gets the same time back
        return str(value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M"))
    if isinstance(value, float):
        return repr(value).replace(".", ",")  # Swedish Excel reads 18,0912 as a number, 18.0912 as text
    if isinstance(value, int):
        return str(value)
    return str(safe_cell(value))


# --- XLSX, written as it is streamed ----------------------------------------------------------------------------

# Characters XML 1.0 does not allow, even escaped; free text may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)

_CONTENT_TYPES_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>')
_RELS_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK_RELS_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>')
# Three cell styles: 0 plain, 1 a date and time, 2 bold (the header).
_STYLES_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '</fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')


def _workbook_xml(sheet: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>')


def _text_cell(value: str, style: int = 0) -> str:
    text = escape(_NOT_XML.sub("", value))
    styled = f' s="{style}"' if style else ""
    return f'<c t="inlineStr"{styled}><is><t xml:space="preserve">{text}</t></is></c>'


def _xlsx_cell(column: Column, value: Any) -> str:
    value = _display(value)
    if value is None:
        return "<c/>"
    if column.kind == "time":
        serial = (value.replace(tzinfo=None) - _EXCEL_EPOCH).total_seconds() / 86400
        return f'<c s="1"><v>{serial:.8f}</v></c>'
    if isinstance(value, int | float):
        return f"<c><v>{value!r}</v></c>"
    return _text_cell(str(value))  # never a formula: inline text is only ever text


def _sheet(cols: list[Column], rows: Iterator[list[Any]]) -> Iterator[bytes]:
    widths = "".join(f'<col min="{n}" max="{n}" width="{w}" customWidth="1"/>' for n, w in enumerate(
        [8, 22, 18, 22, 17, 17, 17, 26, 26, 50, 14, 14, 16, 14, 14], start=1))
    head = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
            f'state="frozen"/></sheetView></sheetViews><cols>{widths}</cols><sheetData>'
            '<row>' + "".join(_text_cell(c.header, 2) for c in cols) + "</row>")
    parts = [head]
    for n, row in enumerate(rows, start=1):
        parts.append("<row>" + "".join(_xlsx_cell(c, v) for c, v in zip(cols, row, strict=True)) + "</row>")
        if n % BATCH == 0:
            yield "".join(parts).encode("utf-8")
            parts = []
    parts.append("</sheetData></worksheet>")
    yield "".join(parts).encode("utf-8")


def _xlsx(cols: list[Column], rows: Iterator[list[Any]]) -> Iterator[bytes]:
    now = dt.datetime.now()

    def member(name: str, text: str) -> tuple[str, dt.datetime, int, Any, Iterator[bytes]]:
        return name, now, 0o600, ZIP_32, iter([text.encode("utf-8")])

    yield from stream_zip([
        member("[Content_Types].xml", _CONTENT_TYPES_XML),
        member("_rels/.rels", _RELS_XML),
        member("xl/workbook.xml", _workbook_xml(_("Deviations"))),
        member("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS_XML),
        member("xl/styles.xml", _STYLES_XML),
        ("xl/worksheets/sheet1.xml", now, 0o600, ZIP_64, _sheet(cols, rows)),
    ])


# --- GeoJSON -----------------------------------------------------------------------------------------------------

def _properties(cols: list[Column], row: list[Any]) -> dict[str, Any]:
    properties = {}
    for column, value in zip(cols[:-2], row[:-2], strict=True):
        if column.kind == "geometry":
            continue  # the feature's geometry
        value = _stored(value)
        properties[column.key] = value.isoformat() if isinstance(value, dt.datetime) else value
    return properties


def _geojson(cols: list[Column], rows: Iterator[list[Any]], crs: int) -> Iterator[bytes]:
    """A FeatureCollection. In SWEREF 99 TM it names its CRS the way GDAL and QGIS read it (RFC 7946 allows
    only WGS 84, so that file is for GIS, not for web maps)."""
    crs_member = b'"crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::3006"}},' if crs == 3006 else b""
    parts = [b'{"type":"FeatureCollection",' + crs_member + b'"features":[']
    for n, row in enumerate(rows):
        drawn = row[-3]
        point = {"type": "Point", "coordinates": [row[-2], row[-1]]}
        feature = {"type": "Feature", "id": row[0], "geometry": drawn[0] if drawn else point,
                   "properties": _properties(cols, row)}
        parts.append((b"," if n else b"") + orjson.dumps(feature))
        if len(parts) >= BATCH:
            yield b"".join(parts)
            parts = []
    parts.append(b"]}")
    yield b"".join(parts)


# --- GeoPackage --------------------------------------------------------------------------------------------------

_SRS = {
    4326: ("WGS 84", 'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
                     'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]'),
    3006: ("SWEREF99 TM", 'PROJCS["SWEREF99 TM",GEOGCS["SWEREF99",DATUM["SWEREF99",SPHEROID["GRS 1980",6378137,'
                          '298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
                          'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
                          'PARAMETER["central_meridian",15],PARAMETER["scale_factor",0.9996],'
                          'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1],'
                          'AUTHORITY["EPSG","3006"]]'),
}


def _gpkg_point(x: float, y: float, srs: int) -> bytes:
    # GeoPackage binary: "GP", version 0, flags (little-endian, no envelope), the SRS id, then WKB.
    return b"GP\x00\x01" + struct.pack("<i", srs) + struct.pack("<BIdd", 1, 1, x, y)


def _gpkg_geometry(drawn: dict[str, Any], srs: int) -> bytes:
    """A line or area in GeoPackage binary: the same header, little-endian WKB."""
    wkb: bytes = shapely.to_wkb(shapely.geometry.shape(drawn), byte_order=1)
    return b"GP\x00\x01" + struct.pack("<i", srs) + wkb


def _gpkg(cols: list[Column], rows: Iterator[list[Any]], crs: int, table: str, kind: str = "POINT"
          ) -> IO[bytes]:
    """A GeoPackage 1.4 with one layer (of points, or GEOMETRY when lines or areas are in it), written in
    batches to a temporary file that is gone from the disk as soon as it is closed (it is unlinked at once, and
    read through the handle returned)."""
    handle, path = tempfile.mkstemp(suffix=".gpkg", prefix="lagesbild-export-")
    os.close(handle)
    try:
        db = sqlite3.connect(path)
        _gpkg_schema(db, cols, crs, table, kind)
        attributes = [c for c in cols[:-2] if c.kind != "geometry"]
        names = ", ".join(f'"{c.key}"' for c in attributes)
        insert = f'INSERT INTO "{table}" (geom, {names}) VALUES (?{", ?" * len(attributes)})'
        batch: list[tuple[Any, ...]] = []
        bounds = [float("inf"), float("inf"), float("-inf"), float("-inf")]
        for row in rows:
            x, y, drawn = row[-2], row[-1], row[-3]
            extent = shapely.geometry.shape(drawn[0]).bounds if drawn else (x, y, x, y)
            bounds = [min(bounds[0], extent[0]), min(bounds[1], extent[1]), max(bounds[2], extent[2]),
                      max(bounds[3], extent[3])]
            values = [_stored(v) for c, v in zip(cols[:-2], row[:-2], strict=True) if c.kind != "geometry"]
            geom = _gpkg_geometry(drawn[0], crs) if drawn else _gpkg_point(x, y, crs)
            batch.append((geom, *(_gpkg_time(v) if isinstance(v, dt.datetime) else v for v in values)))
            if len(batch) >= BATCH:
                db.executemany(insert, batch)
                batch = []
        db.executemany(insert, batch)
        if bounds[0] != float("inf"):
            db.execute("UPDATE gpkg_contents SET min_x=?, min_y=?, max_x=?, max_y=?", bounds)
        db.commit()
        db.close()
        result = open(path, "rb")  # closed by the response that streams it
    finally:
        os.unlink(path)  # the open handle keeps the file readable; nothing is left behind on the disk
    return result


def _gpkg_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # GeoPackage's DATETIME: UTC, ISO 8601


def _gpkg_schema(db: sqlite3.Connection, cols: list[Column], crs: int, table: str, kind: str = "POINT") -> None:
    db.execute("PRAGMA application_id = 1196444487")  # "GPKG"
    db.execute("PRAGMA user_version = 10400")
    db.execute("PRAGMA journal_mode = OFF")
    db.executescript("""
        CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY,
            organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL,
            description TEXT);
        CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL,
            identifier TEXT UNIQUE, description TEXT DEFAULT '',
            last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')), min_x DOUBLE,
            min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER REFERENCES gpkg_spatial_ref_sys(srs_id));
        CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL,
            geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
            CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name));
    """)
    db.executemany("INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", [
        ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", None),
        ("Undefined geographic SRS", 0, "NONE", 0, "undefined", None),
        *[(name, code, "EPSG", code, wkt, None) for code, (name, wkt) in _SRS.items()],
    ])
    types = {"number": "INTEGER", "decimal": "REAL", "text": "TEXT", "time": "DATETIME"}
    fields = ", ".join(f'"{c.key}" {types[c.kind]}' for c in cols[:-2] if c.key != "id" and c.kind != "geometry")
    db.execute(f'CREATE TABLE "{table}" (fid INTEGER PRIMARY KEY AUTOINCREMENT, geom {kind}, "id" INTEGER, '
               f"{fields})")
    db.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) VALUES (?, 'features', ?, ?)",
               (table, table, crs))
    db.execute("INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', ?, ?, 0, 0)", (table, kind, crs))
