"""Reading an uploaded file row by row: CSV (any separator, UTF-8 or the Windows encodings old spreadsheets
use), XLSX, GeoJSON and GeoPackage.

Each reader yields `Row`s with the row number a person finds in the file, so every problem can be reported
where it is. None holds the whole file in memory: CSV and GeoPackage are read as they lie on the disk, XLSX
through openpyxl's streaming reader, and GeoJSON through ijson, an incremental JSON parser.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import sqlite3
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson
import shapely
from django.utils.translation import gettext as _

from lagesbild.csvfile import uncell
from lagesbild.errors import InvalidInput

FORMATS = ("csv", "xlsx", "geojson", "gpkg")
SAMPLE_ROWS = 5
CSV_SEPARATORS = ";,\t|"
# A spreadsheet is a ZIP of XML. An honest one unpacks to some tens of times its size; these limits let
# through any sheet Excel can hold and stop a "zip bomb" before it is unpacked.
XLSX_MAX_UNPACKED = 4 * 1024**3
XLSX_MAX_RATIO = 500
csv.field_size_limit(1024 * 1024)  # one cell of up to a megabyte; more is not a deviation's text


@dataclass
class Row:
    number: int  # as a person finds it: the spreadsheet's row number, or the feature's place in the file
    values: list[Any]  # one per header
    point: tuple[float, float] | None = None  # a GeoJSON or GeoPackage feature's position, in the file's CRS
    geometry_problem: str = ""


@dataclass
class Layout:
    """What a file holds, found by reading its beginning."""

    format: str
    headers: list[str]
    samples: list[list[str]] = field(default_factory=list)  # the first rows, as text, for the mapping step
    has_geometry: bool = False  # GeoJSON and GeoPackage carry positions; CSV and XLSX have columns for them
    crs: int | None = None  # the EPSG code the file declares, if it does
    encoding: str = ""  # CSV
    separator: str = ""  # CSV
    layer: str = ""  # GeoPackage
    other_layers: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # GeoJSON: the properties' own names, beside the headers shown

    def as_json(self) -> dict[str, Any]:
        return {"format": self.format, "headers": self.headers, "samples": self.samples,
                "has_geometry": self.has_geometry, "crs": self.crs, "encoding": self.encoding,
                "separator": self.separator, "layer": self.layer, "other_layers": self.other_layers,
                "keys": self.keys}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layout:
        return cls(**data)


def guess_format(path: Path, filename: str) -> str:
    """The format, from the file's first bytes (its name can be wrong), else its name."""
    with open(path, "rb") as handle:
        start = handle.read(16)
    if start.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if start.startswith(b"PK\x03\x04"):
        return "xlsx"
    suffix = Path(filename).suffix.lower()
    if suffix in {".geojson", ".json"} or start.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "geojson"
    if suffix in {".xls", ".ods", ".shp", ".zip", ".kml", ".gpx"}:
        raise InvalidInput(_("Lägesbild reads CSV, XLSX, GeoJSON and GeoPackage files. Save the file as one of "
                             "these first (in Excel: Save as, Excel workbook or CSV)."), field="file")
    return "csv"


def read_layout(path: Path, fmt: str) -> Layout:
    """The file's columns and first rows. Raises InvalidInput when the file cannot be read as `fmt` at all."""
    reader = {"csv": _csv_layout, "xlsx": _xlsx_layout, "geojson": _geojson_layout, "gpkg": _gpkg_layout}[fmt]
    layout = reader(path)
    if not layout.headers:
        raise InvalidInput(_("The file is empty: it has no header row."), field="file")
    return layout


def read_rows(path: Path, layout: Layout) -> Iterator[Row]:
    """Every data row of the file, in order."""
    readers = {"csv": _csv_rows, "xlsx": _xlsx_rows, "geojson": _geojson_rows, "gpkg": _gpkg_rows}
    return readers[layout.format](path, layout)


def as_text(value: Any) -> str:
    """A cell as a person reads it, for samples and problem reports."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00").removesuffix(" 00:00")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)[:200]


# --- CSV -------------------------------------------------------------------------------------------------------

def _encoding(path: Path) -> str:
    """UTF-8 (with or without a byte-order mark) if the whole file is valid UTF-8; otherwise Windows-1252,
    the encoding of Swedish Excel's "CSV (semikolonavgränsad)", which holds Latin-1's å, ä and ö as well."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        try:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252" if not _has_undefined_cp1252(path) else "latin-1"
    return "utf-8-sig"


def _has_undefined_cp1252(path: Path) -> bool:
    """Whether the file has bytes Windows-1252 leaves undefined (then it is read as Latin-1)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            if any(b in chunk for b in (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")):
                return True
    return False


def _separator(text: str) -> str:
    """The separator: Excel's "sep=;" line if there is one, else the one that splits the first lines into the
    same number of columns most often."""
    first = text.split("\n", 1)[0].strip()
    if first.lower().startswith("sep=") and len(first) == 5:
        return first[4]
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if len(lines) > 1 and len(text) < 64 * 1024:
        lines = lines[:-1] if not text.endswith("\n") else lines
    best, best_score = ";", -1
    for candidate in CSV_SEPARATORS:
        counts = [len(next(csv.reader([line], delimiter=candidate))) for line in lines] if lines else [1]
        if counts[0] < 2:
            continue
        score = sum(1 for c in counts if c == counts[0]) * 100 + counts[0]
        if score > best_score:
            best, best_score = candidate, score
    return best


def _csv_reader(path: Path, encoding: str, separator: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each non-empty record. A record with a quoted line break spans lines; it is
    numbered by the line it starts on, as a spreadsheet shows it."""
    with open(path, encoding=encoding, newline="") as handle:
        # Strict: a quote opened and never closed is an error, not the rest of the file swallowed into one cell.
        reader = csv.reader(handle, delimiter=separator, strict=True)
        line = 1
        try:
            for cells in reader:
                start, line = line, reader.line_num + 1
                if cells and any(c.strip() for c in cells):
                    yield start, cells
        except csv.Error as exc:
            reason = str(exc)
            if "field larger than field limit" in reason:
                reason = _("a cell holds more than a megabyte")
            elif "unexpected end of data" in reason or "expected after" in reason:
                reason = _("a quotation mark is opened and not closed, or text follows a closing one")
            raise InvalidInput(_("Row %(row)d of the file cannot be read as CSV (%(reason)s).") % {
                "row": line, "reason": reason}, field="file") from exc


def _csv_layout(path: Path) -> Layout:
    encoding = _encoding(path)
    with open(path, encoding=encoding, newline="") as handle:
        start = handle.read(64 * 1024)
    if not start.strip():
        raise InvalidInput(_("The file is empty."), field="file")
    if "\x00" in start:
        raise InvalidInput(_("The file is not a text file. Lägesbild reads CSV, XLSX, GeoJSON and GeoPackage."),
                           field="file")
    separator = _separator(start)
    rows = _csv_reader(path, encoding, separator)
    headers: list[str] = []
    samples: list[list[str]] = []
    for _n, cells in rows:
        if not headers:
            if _is_separator_line(cells):
                continue
            headers = _headers(cells)
            continue
        samples.append(cells[:len(headers)])
        if len(samples) >= SAMPLE_ROWS:
            break
    return Layout("csv", headers, samples, encoding=encoding, separator=separator)


MAX_COLUMNS = 500  # a sheet of deviations has a dozen or two; thousands are not one


def _headers(cells: list[Any], drop_trailing_empty: bool = True) -> list[str]:
    """Header names, stripped, with empty and repeated ones made distinct ("Kolumn 4", "Datum (2)")."""
    if len(cells) > MAX_COLUMNS:
        raise InvalidInput(_("The file has %(count)d columns; at most %(max)d can be read. Is the first row its "
                             "header?") % {"count": len(cells), "max": MAX_COLUMNS}, field="file")
    result: list[str] = []
    taken: set[str] = set()
    for n, cell in enumerate(cells, start=1):
        name = as_text(cell).strip().lstrip("\ufeff")[:200] or _("Column %(n)d") % {"n": n}
        base, k = name, 2
        while name in taken:
            name, k = f"{base} ({k})", k + 1
        result.append(name)
        taken.add(name)
    while drop_trailing_empty and result and result[-1].startswith(_("Column %(n)d") % {"n": len(result)}):
        result.pop()  # trailing empty columns
    return result


def _is_separator_line(cells: list[str]) -> bool:
    """Excel's "sep=;" first line, which names the separator and is not the header."""
    return bool(cells) and cells[0].lower().startswith("sep=") and len(cells[0]) <= 5 and not any(
        c.strip() for c in cells[1:])


def _csv_rows(path: Path, layout: Layout) -> Iterator[Row]:
    header_seen = False
    width = len(layout.headers)
    for number, cells in _csv_reader(path, layout.encoding, layout.separator):
        if not header_seen:
            if _is_separator_line(cells):
                continue
            header_seen = True
            continue
        cells = [uncell(c) for c in cells]
        yield Row(number, (cells + [""] * width)[:width] if len(cells) != width else cells)


# --- XLSX ------------------------------------------------------------------------------------------------------

def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise InvalidInput(_("The file is not a valid Excel workbook (XLSX)."), field="file") from exc
    unpacked = sum(m.file_size for m in members)
    packed = sum(m.compress_size for m in members) or 1
    if unpacked > XLSX_MAX_UNPACKED or (unpacked > 50 * 1024**2 and unpacked / packed > XLSX_MAX_RATIO):
        raise InvalidInput(_("The workbook unpacks to %(size)d MB, far more than a sheet of deviations holds. It "
                             "is refused, so as not to fill the server (a \"zip bomb\").") % {
            "size": unpacked // 1024**2}, field="file")


def _open_workbook(path: Path, data_only: bool = True) -> Any:
    from openpyxl import load_workbook

    _check_zip(path)
    try:
        return load_workbook(path, read_only=True, data_only=data_only)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file; each means the same to a person
        raise InvalidInput(_("The file is not a valid Excel workbook (XLSX)."), field="file") from exc


def _xlsx_layout(path: Path) -> Layout:
    workbook = _open_workbook(path)
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise InvalidInput(_("The workbook has no sheet."), field="file")
        headers: list[str] = []
        samples: list[list[str]] = []
        for cells in sheet.iter_rows(values_only=True):
            if not any(c is not None and str(c).strip() for c in cells):
                continue
            if not headers:
                headers = _headers(list(cells))
                continue
            samples.append([as_text(c) for c in cells[:len(headers)]])
            if len(samples) >= SAMPLE_ROWS:
                break
        others = [ws.title for ws in workbook.worksheets[1:]]
        return Layout("xlsx", headers, samples, layer=sheet.title, other_layers=others)
    finally:
        workbook.close()


def _xlsx_rows(path: Path, layout: Layout) -> Iterator[Row]:
    """The first sheet's rows, with each formula's last calculated value, never the formula itself. A formula
    saved without a value (a file made by a program, not by Excel) reads as empty, and is said to be one."""
    workbook = _open_workbook(path)
    formulas = _open_workbook(path, data_only=False) if _has_formulas(path) else None
    width = len(layout.headers)
    try:
        values = workbook.worksheets[0].iter_rows()
        texts = formulas.worksheets[0].iter_rows() if formulas is not None else None
        header_seen = False
        for counted, cells in enumerate(values, start=1):
            formula_cells = next(texts) if texts is not None else None
            row = [c.value for c in cells]
            if not any(v is not None and str(v).strip() for v in row):
                continue
            # An empty cell of the streaming reader has no row number; any other cell of the row has.
            number = next((c.row for c in cells if getattr(c, "row", None)), counted)
            if not header_seen:
                header_seen = True
                continue
            row = (row + [None] * width)[:width]
            if formula_cells is not None:
                for i, cell in enumerate(formula_cells[:width]):
                    if row[i] is None and getattr(cell, "data_type", "") == "f":
                        row[i] = Formula(str(cell.value))
            yield Row(number, row)
    finally:
        workbook.close()
        if formulas is not None:
            formulas.close()


class Formula(str):
    """A formula cell that has no saved value."""


def _has_formulas(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        if not names:
            return False
        with archive.open(sorted(names)[0]) as sheet:
            tail = b""
            while chunk := sheet.read(1 << 20):
                if b"<f>" in tail + chunk or b"<f " in tail + chunk:
                    return True
                tail = chunk[-4:]
    return False


# --- GeoJSON ---------------------------------------------------------------------------------------------------

def _declared_crs(name: str) -> int | None:
    """The EPSG code in a GeoJSON "crs" name such as urn:ogc:def:crs:EPSG::3006 or EPSG:3006."""
    if "CRS84" in name.upper():
        return 4326
    digits = name.rsplit(":", 1)[-1]
    return int(digits) if digits.isdigit() else None


def _geojson_layout(path: Path) -> Layout:
    crs: int | None = None
    keys: list[str] = []
    samples: list[dict[str, Any]] = []
    saw_collection = False
    try:
        with open(path, "rb") as handle:
            for prefix, event, value in ijson.parse(handle, use_float=True):
                if prefix == "type" and value == "FeatureCollection":
                    saw_collection = True
                elif prefix == "crs.properties.name" and isinstance(value, str):
                    crs = _declared_crs(value)
                elif prefix == "features" and event == "start_array":
                    break
            if not saw_collection:
                handle.seek(0)
                for prefix, _event, value in ijson.parse(handle):
                    if prefix == "type":
                        saw_collection = value == "FeatureCollection"
                        break
            if not saw_collection:
                raise InvalidInput(_("The GeoJSON file must hold a FeatureCollection."), field="file")
            handle.seek(0)
            for n, feature in enumerate(ijson.items(handle, "features.item", use_float=True)):
                properties = feature.get("properties") if isinstance(feature, dict) else None
                if isinstance(properties, dict):
                    keys += [k for k in properties if k not in keys]
                    if len(samples) < SAMPLE_ROWS:
                        samples.append(properties)
                if n >= 1000:
                    break
    except ijson.JSONError as exc:
        raise InvalidInput(_("The file is not valid JSON: %(reason)s") % {"reason": str(exc)[:200]},
                           field="file") from exc
    headers = _headers(keys, drop_trailing_empty=False) if keys else []
    if not headers:
        raise InvalidInput(_("The GeoJSON file has no features with properties."), field="file")
    # RFC 7946 says WGS 84, but GIS programs write SWEREF 99 TM without saying so: left to detection.
    return Layout("geojson", headers, [[as_text(s.get(k)) for k in keys] for s in samples], has_geometry=True,
                  crs=crs, keys=keys)


def _geojson_rows(path: Path, layout: Layout) -> Iterator[Row]:
    with open(path, "rb") as handle:
        try:
            for n, feature in enumerate(ijson.items(handle, "features.item", use_float=True), start=1):
                if not isinstance(feature, dict):
                    yield Row(n, [None] * len(layout.headers), geometry_problem=_("The feature is not an object."))
                    continue
                found = feature.get("properties")
                properties: dict[str, Any] = found if isinstance(found, dict) else {}
                values = [_plain(properties.get(k)) for k in (layout.keys or layout.headers)]
                point, problem = _geojson_point(feature.get("geometry"))
                yield Row(n, values, point, problem)
        except ijson.JSONError as exc:
            raise InvalidInput(_("The file is not valid JSON: %(reason)s") % {"reason": str(exc)[:200]},
                               field="file") from exc


def _plain(value: Any) -> Any:
    """A property as a cell: lists and objects as their JSON text."""
    if isinstance(value, dict | list):
        import orjson

        return orjson.dumps(value).decode()
    return value


def _geojson_point(geometry: Any) -> tuple[tuple[float, float] | None, str]:
    if not isinstance(geometry, dict) or geometry.get("type") is None:
        return None, _("The feature has no geometry.")
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "MultiPoint" and isinstance(coordinates, list) and len(coordinates) == 1:
        kind, coordinates = "Point", coordinates[0]
    if kind != "Point":
        return None, _geometry_refusal(str(kind))
    if (not isinstance(coordinates, list) or len(coordinates) < 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates[:2])):
        return None, _("The point's coordinates are not two numbers.")
    return (float(coordinates[0]), float(coordinates[1])), ""


def _geometry_refusal(kind: str) -> str:
    names = {"Polygon": _("an area (polygon)"), "MultiPolygon": _("an area (polygon)"),
             "LineString": _("a line"), "MultiLineString": _("a line"), "MultiPoint": _("several points"),
             "GeometryCollection": _("a collection of geometries")}
    return _("The feature is %(kind)s. An import takes points only: convert it to points first (in QGIS: "
             "Vector, Geometry tools, Centroids), or draw the line or area on the map.") % {
        "kind": names.get(kind, kind)}


# --- GeoPackage ------------------------------------------------------------------------------------------------

def _gpkg_connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        db.execute("SELECT table_name, data_type FROM gpkg_contents LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        db.close()
        raise InvalidInput(_("The file is an SQLite database but not a GeoPackage."), field="file") from exc
    return db


def _gpkg_layers(db: sqlite3.Connection) -> list[tuple[str, str, int | None]]:
    """(table, geometry column, EPSG code) of each feature layer."""
    rows = db.execute(
        "SELECT g.table_name, g.column_name, s.organization, s.organization_coordsys_id "
        "FROM gpkg_geometry_columns g JOIN gpkg_contents c ON c.table_name = g.table_name "
        "LEFT JOIN gpkg_spatial_ref_sys s ON s.srs_id = g.srs_id WHERE c.data_type = 'features' "
        "ORDER BY c.rowid").fetchall()
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    # Only tables: a view runs a query the file chose, which could take forever.
    return [(t, col, _epsg(org, code)) for t, col, org, code in rows if t in tables]


def _epsg(organisation: Any, code: Any) -> int | None:
    if str(organisation).upper() != "EPSG":
        return None
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


def _gpkg_columns(db: sqlite3.Connection, table: str, geometry_column: str) -> list[str]:
    info = db.execute(f'PRAGMA table_info("{_quoted(table)}")').fetchall()
    return [name for _cid, name, _type, _nn, _default, pk in info if not pk and name != geometry_column]


def _quoted(name: str) -> str:
    return name.replace('"', '""')


def _gpkg_layout(path: Path) -> Layout:
    db = _gpkg_connect(path)
    try:
        layers = _gpkg_layers(db)
        if not layers:
            raise InvalidInput(_("The GeoPackage has no layer of features."), field="file")
        table, geometry_column, crs = layers[0]
        headers = _gpkg_columns(db, table, geometry_column)
        names = ", ".join(f'"{_quoted(h)}"' for h in headers)
        samples = [[as_text(v) for v in row] for row in db.execute(
            f'SELECT {names} FROM "{_quoted(table)}" LIMIT {SAMPLE_ROWS}').fetchall()] if headers else []
        return Layout("gpkg", headers, samples, has_geometry=True, crs=crs, layer=table,
                      other_layers=[t for t, _c, _s in layers[1:]])
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(_("The GeoPackage cannot be read: %(reason)s") % {"reason": exc}, field="file") from exc
    finally:
        db.close()


def _gpkg_rows(path: Path, layout: Layout) -> Iterator[Row]:
    db = _gpkg_connect(path)
    try:
        geometry_column = next(col for t, col, _s in _gpkg_layers(db) if t == layout.layer)
        names = ", ".join(f'"{_quoted(h)}"' for h in [geometry_column, *layout.headers])
        cursor = db.execute(f'SELECT {names} FROM "{_quoted(layout.layer)}" ORDER BY rowid')
        for n, (blob, *values) in enumerate(cursor, start=1):
            point, problem = _gpkg_point(blob)
            yield Row(n, list(values), point, problem)
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(_("The GeoPackage cannot be read: %(reason)s") % {"reason": exc}, field="file") from exc
    finally:
        db.close()


_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _gpkg_point(blob: Any) -> tuple[tuple[float, float] | None, str]:
    """The point in a GeoPackage geometry: a small header ("GP", version, flags, SRS id, envelope) and WKB."""
    if not isinstance(blob, bytes) or len(blob) < 8 or blob[:2] != b"GP":
        return None, _("The feature has no geometry.")
    flags = blob[3]
    envelope = _ENVELOPE_BYTES.get((flags >> 1) & 0x07)
    if envelope is None:
        return None, _("The feature's geometry cannot be read.")
    if flags & 0x10:
        return None, _("The feature has no geometry.")
    try:
        geom = shapely.from_wkb(blob[8 + envelope:])
    except (shapely.errors.GEOSException, ValueError, struct.error):
        return None, _("The feature's geometry cannot be read.")
    if geom.geom_type == "MultiPoint" and len(geom.geoms) == 1:
        geom = geom.geoms[0]
    if geom.geom_type != "Point":
        return None, _geometry_refusal(geom.geom_type)
    if geom.is_empty:
        return None, _("The feature has no geometry.")
    return (float(geom.x), float(geom.y)), ""
