"""Exports of the map's filter, read back the way their users read them: CSV as Swedish Excel does (BOM,
semicolons, decimal commas), XLSX with openpyxl, GeoJSON and GeoPackage with GDAL (pyogrio)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from typing import Any

import openpyxl
import pyogrio
import pytest
from django.utils import timezone

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations.models import Deviation
from lagesbild.geometry import to_sweref99tm
from tests.conftest import MARKER, World

pytestmark = pytest.mark.django_db
WHEN = dt.datetime(2026, 11, 3, 21, 30, tzinfo=dt.UTC)  # 22:30 in Stockholm


def fetch(world: World, membership: Any, **params: Any) -> Any:
    response = world.client(membership).get("/api/forums/farsta/export", params)
    return response


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def planted(world: World) -> dict[str, Deviation]:
    """A forum-wide deviation with awkward text, and the police's restricted one (with the marker)."""
    shared = world.report(world.housing_reporter, category="graffiti", lon=18.0912, lat=59.2437, observed_at=WHEN,
                          place_name="Farsta torg; vid kiosken", description='=HYPERLINK("x") "citat"\nrad två åäö')
    restricted = world.report(world.police_reporter, category="suspected_dealing", visibility="organisation",
                              place_name=f"Port {MARKER}", description=MARKER, observed_at=WHEN)
    return {"shared": shared, "restricted": restricted}


def test_csv_opens_in_swedish_excel(world: World, planted: dict[str, Deviation]) -> None:
    response = fetch(world, world.housing_reporter, format="csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="farsta-avvikelser-')
    data = body(response)
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel then reads UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:5] == ["Id", "Kategori", "Kategorinyckel", "Huvudkategori", "Observerad"]
    assert rows[0][-2:] == ["Longitud", "Latitud"]
    [row] = rows[1:]  # the restricted deviation is not the housing company's to see
    values = dict(zip(rows[0], row, strict=True))
    assert values["Id"] == str(planted["shared"].pk)
    assert values["Kategori"] == "Klotter" and values["Huvudkategori"] == "Skadegörelse"
    assert values["Observerad"] == "2026-11-03 22:30"  # the forum's time
    assert values["Plats"] == "Farsta torg; vid kiosken"  # the separator inside text is quoted, not a column
    assert values["Beskrivning"] == '\'=HYPERLINK("x") "citat"\nrad två åäö'  # never run as a formula
    assert values["Allvarlighetsgrad"] == "Medel" and values["Synlighet"] == "Hela forumet"
    assert (values["Longitud"], values["Latitud"]) == ("18,0912", "59,2437")  # decimal commas: numbers in Excel
    assert MARKER.encode() not in data


def test_the_police_export_what_they_may_see_and_it_is_audited(world: World, planted: dict[str, Deviation]) -> None:
    data = body(fetch(world, world.police_reporter, format="csv", crs="3006")).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(data), delimiter=";"))
    assert len(rows) == 3 and MARKER in data
    assert rows[0][-2:] == ["Östlig koordinat (SWEREF 99 TM)", "Nordlig koordinat (SWEREF 99 TM)"]
    x, y = to_sweref99tm(18.0912, 59.2437)
    assert rows[1][-2:] == [f"{x:.2f}".replace(".", ","), f"{y:.2f}".replace(".", ",")]
    event = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).latest("pk")
    assert event.actor_id == world.police_reporter.user_id
    assert event.changes == {"what": "deviations", "format": "csv", "crs": 3006, "filter": {}}
    # The restricted deviation was read in full: the same read event as opening it, for its organisation's log.
    [read] = AuditEvent.objects.filter(action=AuditEvent.Action.READ, object_id=planted["restricted"].pk)
    assert (read.actor_id, read.changes) == (world.police_reporter.user_id, {"via": "export (csv)"})
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.READ, object_id=planted["shared"].pk).exists()


def test_the_export_event_says_nothing_another_organisation_may_not_know(world: World,
                                                                        planted: dict[str, Deviation]) -> None:
    # The police search their own restricted deviations within a box: the district's coordinator reads the log.
    fetch(world, world.police_reporter, q=MARKER.lower(), bbox="18.08,59.24,18.10,59.25")
    log = world.client(world.coordinator).get("/f/farsta/logg.csv").content.decode()
    assert MARKER.lower() not in log and "18.08" not in log
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT, actor=world.police_reporter.user)
    assert event.changes["filter"] == {"text search": True, "map view": True}
    assert "count" not in event.changes


def test_the_filter_is_the_maps(world: World, planted: dict[str, Deviation]) -> None:
    world.report(world.housing_reporter, category="litter", observed_at=timezone.now() - dt.timedelta(hours=2))
    rows = list(csv.reader(io.StringIO(body(fetch(world, world.coordinator, category="damage")).decode("utf-8-sig")),
                           delimiter=";"))
    assert [r[2] for r in rows[1:]] == ["graffiti"]
    today = fetch(world, world.coordinator, format="geojson", **{"from": "2026-11-20T00:00:00"})
    assert [f["properties"]["categoryKey"] for f in json.loads(body(today))["features"]] == ["litter"]


def test_xlsx_has_dates_numbers_and_text_never_formulas(world: World, planted: dict[str, Deviation]) -> None:
    response = fetch(world, world.housing_reporter, format="xlsx")
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    data = body(response)
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet.title == "Avvikelser"
    rows = list(sheet.iter_rows(values_only=True))
    header, row = rows
    values = dict(zip(header, row, strict=True))
    assert values["Id"] == planted["shared"].pk
    assert values["Observerad"] == dt.datetime(2026, 11, 3, 22, 30)  # a date cell, in the forum's time
    assert values["Beskrivning"] == '=HYPERLINK("x") "citat"\nrad två åäö'  # text, as typed
    assert sheet.cell(row=2, column=header.index("Beskrivning") + 1).data_type == "s"
    assert (values["Longitud"], values["Latitud"]) == (18.0912, 59.2437)


@pytest.mark.parametrize("crs", [4326, 3006])
@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_gis_files_are_read_by_gdal_in_their_crs(world: World, planted: dict[str, Deviation], tmp_path: Any,
                                                  fmt: str, crs: int) -> None:
    response = fetch(world, world.police_reporter, format=fmt, crs=str(crs))
    assert response.status_code == 200
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(body(response))
    info = pyogrio.read_info(path)
    assert info["features"] == 2
    assert info["crs"] == f"EPSG:{crs}"
    assert info["geometry_type"] == "Point"
    meta, _fids, geometry, fields = pyogrio.raw.read(path)
    by_name = {name: list(values) for name, values in zip(meta["fields"], fields, strict=True)}
    assert by_name["categoryKey"] == ["graffiti", "suspected_dealing"]
    assert by_name["severity"] == ["medium", "medium"] and by_name["visibility"] == ["forum", "organisation"]
    assert by_name["description"][0] == '=HYPERLINK("x") "citat"\nrad två åäö'
    import shapely

    point = shapely.from_wkb(geometry[0])
    expected = (18.0912, 59.2437) if crs == 4326 else to_sweref99tm(18.0912, 59.2437)
    assert (point.x, point.y) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("params", "field"), [({"format": "pdf"}, "format"), ({"crs": "3857"}, "crs"),
                                               ({"category": "no-such"}, "category")])
def test_a_bad_request_is_refused_and_not_audited(world: World, params: dict[str, str], field: str) -> None:
    before = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).count()
    response = fetch(world, world.coordinator, **params)
    assert response.status_code in (400, 422)
    assert response.json()["error"]["field"] == field
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).count() == before


def test_an_empty_export_is_still_a_file_with_its_header(world: World) -> None:
    rows = list(csv.reader(io.StringIO(body(fetch(world, world.viewer)).decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 1 and rows[0][0] == "Id"
    assert openpyxl.load_workbook(io.BytesIO(body(fetch(world, world.viewer, format="xlsx")))).active.max_row == 1
    assert json.loads(body(fetch(world, world.viewer, format="geojson")))["features"] == []


def test_text_xml_cannot_hold_still_gives_a_workbook_that_opens(world: World, planted: dict[str, Deviation]) -> None:
    # Older rows (or an import) may hold control characters that XML 1.0 forbids even escaped.
    Deviation.objects.filter(pk=planted["shared"].pk).update(description="före\x0b\x1befter <b>&amp;</b>")
    sheet = openpyxl.load_workbook(io.BytesIO(body(fetch(world, world.housing_reporter, format="xlsx")))).active
    header = [c.value for c in sheet[1]]
    assert sheet.cell(row=2, column=header.index("Beskrivning") + 1).value == "föreefter <b>&amp;</b>"
