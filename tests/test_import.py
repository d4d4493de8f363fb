"""Imports, from the file to the map: column mapping, coordinate systems, the dry run's per-row problems, the
all-or-nothing import in the background worker, undo, and export → import round trips in every format."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
from typing import Any

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from lagesbild.deviations import bulk
from lagesbild.deviations.models import Deviation
from lagesbild.deviations.services import forum_categories
from lagesbild.errors import DomainError, Forbidden, InvalidInput
from lagesbild.forums.models import Membership
from lagesbild.geometry import to_sweref99tm
from lagesbild.interop import imports
from lagesbild.interop.models import ImportBatch
from tests.conftest import World
from tests.test_api import BASE, new_deviation, post_json

# The worker closes its database connection after each task, as it does in production: the tests commit.
pytestmark = pytest.mark.django_db(transaction=True)
Status = ImportBatch.Status
WHEN = dt.datetime(2026, 10, 3, 19, 30, 15, tzinfo=dt.UTC)  # 21:30:15 in Stockholm


def work() -> None:
    """Run what the background worker has queued, as `lagesbild db_worker` does."""
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)


def upload(membership: Membership, name: str, data: bytes) -> ImportBatch:
    return imports.upload(membership, SimpleUploadedFile(name, data))


def check(batch: ImportBatch, membership: Membership, **changes: Any) -> ImportBatch:
    mapping = dict(batch.mapping)
    columns = {**mapping["columns"], **changes.pop("columns", {})}
    imports.save_mapping(membership, batch, columns, crs=changes.get("crs", mapping["crs"]),
                         swapped=changes.get("swapped", False),
                         visibility=changes.get("visibility", mapping["visibility"]),
                         categories=changes.get("categories"), skip_duplicates=changes.get("skip_duplicates", True))
    work()
    batch.refresh_from_db()
    return batch


def run(batch: ImportBatch, membership: Membership) -> ImportBatch:
    imports.start_import(membership, batch)
    work()
    batch.refresh_from_db()
    return batch


def csv_bytes(rows: list[list[Any]], separator: str = ";", encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=separator, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


HEADER = ["Datum", "Kategori", "Plats", "Beskrivning", "Longitud", "Latitud"]


def test_an_old_spreadsheet_imports_with_its_columns_recognised(
        world: World) -> None:
    data = csv_bytes([HEADER, ["2026-10-01 22:15", "Klotter", "Torget", "Taggar på muren", "18,0912", "59,2437"],
                      ["2026-10-02 kl. 23.05", "krossat glas", "Gångtunneln", "", "18.0950", "59.2450"]])
    batch = upload(world.police_lead, "gammal.csv", data)
    assert batch.status == Status.UPLOADED and batch.format == "csv"
    assert batch.mapping["columns"] == {"Datum": "observed_at", "Kategori": "category", "Plats": "place_name",
                                        "Beskrivning": "description", "Longitud": "x", "Latitud": "y"}
    batch = check(batch, world.police_lead)
    assert batch.status == Status.CHECKED, batch.error
    assert (batch.row_count, batch.ok_count, batch.problem_count) == (2, 2, 0), batch.problems
    assert batch.mapping["categories"] == {"Klotter": "graffiti", "krossat glas": "broken_glass"}
    assert batch.mapping["used_crs"] == {"crs": 4326, "swapped": False}
    assert not Deviation.objects.filter(import_batch=batch).exists()  # the dry run wrote nothing
    batch = run(batch, world.police_lead)
    assert batch.status == Status.IMPORTED and batch.imported_count == 2
    first, second = Deviation.objects.filter(import_batch=batch).order_by("observed_at")
    assert first.source == "import" and first.organisation_id == world.police.pk
    assert first.observed_at == dt.datetime(2026, 10, 1, 20, 15, tzinfo=dt.UTC)  # 22:15 in Stockholm (summer)
    assert (first.lon, first.lat, first.place_name) == (18.0912, 59.2437, "Torget")
    assert second.category.key == "broken_glass"
    assert second.observed_at == dt.datetime(2026, 10, 2, 21, 5, tzinfo=dt.UTC)
    assert first.h3_9 and first.local_hour == 22 and first.sweref_x == to_sweref99tm(18.0912, 59.2437)[0]
    assert not batch.path  # the file is gone once its rows are in


# --- Export → import: lossless in every format and both coordinate systems ----------------------------------

FIELDS = ("category_id", "organisation_id", "place_name", "description", "severity", "status", "visibility")


def _originals(world: World) -> list[Deviation]:
    """Deviations of three organisations, with what a round trip could lose: seconds, an end time, a restricted
    one of the coordinator's own organisation, statuses, text that looks like a formula or holds what PostgreSQL's
    COPY treats specially (tab, newline, backslash, \\N), positions to 7 decimals."""
    made = [
        world.report(world.coordinator, category="graffiti", lon=18.0912345, lat=59.2437123, observed_at=WHEN,
                     place_name="Farsta torg; vid kiosken\\N",
                     description='=HYPERLINK("x") "citat"\nrad två åäö\tflik \\N C:\\mapp\\'),
        world.report(world.coordinator, category="broken_lighting", visibility="organisation", lon=18.1,
                     lat=59.25, observed_at=WHEN - dt.timedelta(days=40, seconds=7),
                     observed_until=WHEN - dt.timedelta(days=39), severity="high", description="Mörkt"),
        world.report(world.police_reporter, category="suspected_dealing", observed_at=WHEN - dt.timedelta(days=200),
                     severity="low", place_name="Perrongen"),
        world.report(world.housing_reporter, category="littering", observed_at=WHEN - dt.timedelta(hours=5)),
    ]
    Deviation.objects.filter(pk=made[2].pk).update(status="resolved")
    Deviation.objects.filter(pk=made[3].pk).update(status="dismissed")
    return list(Deviation.objects.filter(pk__in=[d.pk for d in made]).order_by("observed_at"))


def _export(world: World, fmt: str, crs: int) -> bytes:
    response = world.client(world.coordinator).get("/api/forums/farsta/export", {"format": fmt, "crs": crs})
    assert response.status_code == 200
    return b"".join(response.streaming_content) if response.streaming else response.getvalue()


@pytest.mark.parametrize("crs", [4326, 3006])
def test_what_is_exported_imports_again_unchanged_in_every_format(world: World, crs: int) -> None:
    originals = _originals(world)
    files = {fmt: _export(world, fmt, crs) for fmt in ("csv", "xlsx", "geojson", "gpkg")}
    Deviation.objects.filter(pk__in=[d.pk for d in originals]).update(withdrawn_at=timezone.now())
    for fmt, data in files.items():
        batch = upload(world.coordinator, f"export.{fmt}", data)
        assert batch.format == fmt
        assert set(batch.mapping["columns"].values()) - {""} >= {
            "observed_at", "category", "place_name", "description", "severity", "status", "visibility",
            "organisation", "observed_until", "reported_at"}, (fmt, batch.mapping["columns"])
        batch = check(batch, world.coordinator)
        assert (batch.status, batch.problem_count, batch.ok_count) == (Status.CHECKED, 0, 4), (fmt, batch.problems)
        assert batch.mapping["used_crs"]["crs"] == crs, fmt
        batch = run(batch, world.coordinator)
        assert batch.status == Status.IMPORTED, (fmt, batch.error)
        imported = list(Deviation.objects.filter(import_batch=batch).order_by("observed_at"))
        for before, after in zip(originals, imported, strict=True):
            for name in FIELDS:
                assert getattr(after, name) == getattr(before, name), (fmt, name)
            for name in ("observed_at", "observed_until", "reported_at"):
                value = getattr(before, name)
                expected = value.replace(microsecond=0) if value else None
                assert getattr(after, name) == expected, (fmt, name)
            assert abs(after.lon - before.lon) < 1e-6 and abs(after.lat - before.lat) < 1e-6, fmt
        assert imports.undo(world.coordinator, batch) == 4  # and the next format starts from an empty map


def test_the_same_file_twice_is_refused_and_repeated_rows_are_left_out(world: World) -> None:
    data = csv_bytes([HEADER, ["2026-10-01 22:15", "Klotter", "Torget", "", "18,0912", "59,2437"],
                      ["2026-10-01 22:15", "Klotter", "Torget", "", "18,0912", "59,2437"],
                      ["2026-10-02 10:00", "Klotter", "Torget", "", "18,0912", "59,2437"]])
    batch = check(upload(world.police_lead, "a.csv", data), world.police_lead)
    assert (batch.ok_count, batch.duplicate_count, batch.problem_count) == (2, 1, 0)
    assert batch.problems == [{"row": 3, "column": "", "value": "", "message": "Samma som rad 2.",
                               "kind": "duplicate"}]
    run(batch, world.police_lead)
    with pytest.raises(InvalidInput, match=r"Filen har redan importerats.*\(import \d+\)"):
        upload(world.police_lead, "a-igen.csv", data)
    # The same rows in another file are in the forum already.
    again = check(upload(world.police_lead, "b.csv", data + b"\r\n"), world.police_lead)
    assert (again.ok_count, again.duplicate_count) == (0, 3)
    assert {p["message"] for p in again.problems} == {
        f"Finns redan i Lägesbild (avvikelse {pk})." for pk in
        Deviation.objects.filter(import_batch=batch).values_list("pk", flat=True)}
    with pytest.raises(InvalidInput, match="inga rader att importera"):
        imports.start_import(world.police_lead, again)


def test_a_restricted_deviation_another_organisation_cannot_see_is_never_named(world: World) -> None:
    hidden = world.report(world.police_reporter, category="graffiti", visibility="organisation", lon=18.0912,
                          lat=59.2437, observed_at=dt.datetime(2026, 10, 1, 20, 15, tzinfo=dt.UTC))
    data = csv_bytes([HEADER, ["2026-10-01 22:15", "Klotter", "", "", "18,0912", "59,2437"]])
    batch = check(upload(world.coordinator, "a.csv", data), world.coordinator)
    assert (batch.ok_count, batch.duplicate_count, batch.problems) == (1, 0, [])
    assert str(hidden.pk) not in json.dumps(batch.problems)


# --- Coordinate systems ---------------------------------------------------------------------------------------

POINTS = [(18.0912, 59.2437), (18.1, 59.25), (18.07, 59.23)]


def _positions(crs: int) -> list[tuple[float, float]]:
    from pyproj import Transformer

    to = Transformer.from_crs("EPSG:4326", f"EPSG:{crs}", always_xy=True)
    return [to.transform(lon, lat) for lon, lat in POINTS]


@pytest.mark.parametrize(("crs", "swapped"), [(4326, False), (4326, True), (3006, False), (3006, True),
                                              (3011, False), (3011, True)])
def test_the_coordinate_system_and_axis_order_are_found(world: World, crs: int, swapped: bool) -> None:
    rows = [["Tid", "Typ", "X", "Y"]]
    for x, y in _positions(crs):
        a, b = (y, x) if swapped else (x, y)
        rows.append(["2026-10-01 12:00", "graffiti", f"{a:.7f}".replace(".", ","), f"{b:.7f}".replace(".", ",")])
    batch = check(upload(world.police_lead, "xy.csv", csv_bytes(rows)), world.police_lead)
    assert batch.mapping["detected"] == {"crs": crs, "swapped": swapped, "share": 1.0}
    assert batch.problem_count == 0, batch.problems
    run(batch, world.police_lead)
    got = sorted(Deviation.objects.filter(import_batch=batch).values_list("lon", "lat"))
    for (lon, lat), (want_lon, want_lat) in zip(got, sorted(POINTS), strict=True):
        assert abs(lon - want_lon) < 1e-6 and abs(lat - want_lat) < 1e-6


def test_rows_outside_the_area_and_in_the_wrong_order_are_reported_per_row(world: World) -> None:
    rows = [HEADER, ["2026-10-01 12:00", "Klotter", "", "", "18,09", "59,24"],
            ["2026-10-01 12:00", "Klotter", "", "", "59,24", "18,09"],  # this row swapped
            ["2026-10-01 12:00", "Klotter", "", "", "17,95", "59,33"]]  # Stockholm city, outside Farsta
    batch = check(upload(world.police_lead, "a.csv", csv_bytes(rows)), world.police_lead)
    assert batch.mapping["detected"]["crs"] == 4326 and not batch.mapping["detected"]["swapped"]
    assert [(p["row"], p["column"], p["message"]) for p in batch.problems] == [
        (3, "Longitud", "Positionen ligger utanför forumets område (Farsta). Med x och y i omvänd ordning hade den "
                        "legat inom området: är kolumnerna förväxlade på den här raden?"),
        (4, "Longitud", "Positionen ligger utanför forumets område (Farsta)."),
    ]
    assert batch.problem_count == 2
    with pytest.raises(InvalidInput):
        imports.start_import(world.police_lead, batch)


# --- Bad input ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-8", "utf-8-sig"])
@pytest.mark.parametrize("separator", [";", ",", "\t"])
def test_encodings_and_separators_of_old_spreadsheets(world: World, encoding: str, separator: str) -> None:
    rows = [["Datum", "Kategori", "Plats", "Lon", "Lat"],
            ["2026-10-01 12:00", "Skräp", "Gården vid Ågatan, Örby", "18.09", "59.244"]]
    batch = upload(world.police_lead, "gammal.csv", csv_bytes(rows, separator, encoding))
    assert batch.layout["headers"] == rows[0]
    assert batch.layout["samples"][0][2] == "Gården vid Ågatan, Örby"
    batch = check(batch, world.police_lead)
    assert batch.problem_count == 0, batch.problems
    run(batch, world.police_lead)
    assert Deviation.objects.get(import_batch=batch).place_name == "Gården vid Ågatan, Örby"


def test_excel_date_serials_and_a_time_of_day_column(world: World) -> None:
    rows = [["Datum", "Klockslag", "Kategori", "Lon", "Lat"],
            ["46023", "22:15", "graffiti", "18.09", "59.244"],  # 2026-01-01
            ["46023,5", "", "graffiti", "18.091", "59.244"],  # 2026-01-01 12:00, the time in the serial
            ["20260102", "kl. 7.05", "graffiti", "18.092", "59.244"]]
    batch = upload(world.police_lead, "a.csv", csv_bytes(rows))
    assert batch.mapping["columns"]["Klockslag"] == "observed_time"
    batch = check(batch, world.police_lead)
    assert batch.problem_count == 0, batch.problems
    run(batch, world.police_lead)
    times = sorted(Deviation.objects.filter(import_batch=batch).values_list("observed_at", flat=True))
    assert times == [dt.datetime(2026, 1, 1, 11, 0, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 21, 15, tzinfo=dt.UTC),
                     dt.datetime(2026, 1, 2, 6, 5, tzinfo=dt.UTC)]


def test_every_bad_row_is_reported_and_nothing_is_written(world: World) -> None:
    rows = [["Datum", "Kategori", "Lon", "Lat", "Allvarlighetsgrad", "Beskrivning"],
            ["2026-10-01 12:00", "graffiti", "18.09", "59.244", "hög", "ok"],
            ["igår", "graffiti", "18.09", "59.244", "", ""],
            ["2099-01-01 12:00", "graffiti", "18.09", "59.244", "", ""],
            ["2026-10-01 12:00", "Drakar", "18.09", "59.244", "", ""],
            ["2026-10-01 12:00", "graffiti", "norr", "59.244", "", ""],
            ["2026-10-01 12:00", "graffiti", "18.09", "59.244", "akut", ""],
            ["2026-10-01 12:00", "graffiti", "18.09", "59.244", "", "x" * 5000],
            ["", "graffiti", "18.09", "59.244", "", ""]]
    batch = check(upload(world.police_lead, "a.csv", csv_bytes(rows)), world.police_lead)
    problems = [(p["row"], p["column"], p["message"]) for p in batch.problems]
    assert problems == [
        (3, "Datum", "Inte ett datum och en tid som Lägesbild känner igen. Skriv som 2024-03-05 14:30."),
        (4, "Datum", "Tidpunkten då det upptäcktes kan inte ligga i framtiden."),
        (5, "Kategori", "Kategorin ”Drakar” är inte kopplad till någon av forumets kategorier. Välj en för den "
                        "nedan."),
        (6, "Lon", "Inte ett tal."),
        (7, "Allvarlighetsgrad", "Inte en av: Låg, Medel, Hög."),
        (8, "Beskrivning", "Beskrivningen får vara högst 4000 tecken."),
        (9, "Datum", "Tom."),
    ]
    assert (batch.row_count, batch.ok_count, batch.problem_count) == (8, 1, 7)
    assert batch.mapping["categories"] == {"graffiti": "graffiti", "Drakar": ""}
    with pytest.raises(InvalidInput, match="problem"):
        imports.start_import(world.police_lead, batch)
    assert not Deviation.objects.filter(source="import").exists()


def test_a_column_and_a_category_mapped_by_hand_are_remembered_for_the_next_file(world: World) -> None:
    rows = [["Datum", "Vad", "Lon", "Lat"], ["2026-10-01 12:00", "Tagg", "18.09", "59.244"]]
    batch = upload(world.police_lead, "a.csv", csv_bytes(rows))
    assert batch.mapping["columns"]["Vad"] == ""  # not a name Lägesbild knows
    batch = check(batch, world.police_lead, columns={"Vad": "category"})
    assert batch.problem_count == 1 and batch.mapping["categories"] == {"Tagg": ""}
    batch = check(batch, world.police_lead, categories={"Tagg": "graffiti"})
    assert batch.problem_count == 0
    rows[0][1] = " VAD"
    rows[1][0] = "2026-10-02 12:00"
    again = upload(world.police_lead, "b.csv", csv_bytes(rows))  # the coordinator's forum remembers it
    assert again.mapping["columns"]["VAD"] == "category"
    again = check(again, world.police_lead)
    assert again.problem_count == 0 and again.mapping["categories"] == {"Tagg": "graffiti"}


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_with_real_dates_and_a_formula_without_a_value(world: World) -> None:
    data = _xlsx([["Datum", "Kategori", "Lon", "Lat", "Beskrivning"],
                  [dt.datetime(2026, 10, 1, 12, 0), "graffiti", 18.09, 59.244, "vanlig"],
                  [dt.datetime(2026, 10, 1, 13, 0), "graffiti", 18.09, 59.244, '=HYPERLINK("http://x","klicka")'],
                  ["=TODAY()", "graffiti", 18.09, 59.244, ""]])
    batch = check(upload(world.police_lead, "a.xlsx", data), world.police_lead)
    assert [(p["row"], p["column"]) for p in batch.problems] == [(3, "Beskrivning"), (4, "Datum")]
    assert "formel" in batch.problems[0]["message"]


def test_files_that_are_not_what_they_say_get_a_clear_refusal(world: World, settings: Any) -> None:
    import zipfile

    cases: list[tuple[str, bytes, str]] = [
        ("tom.csv", b"", "Filen är tom"),
        ("bara-rubrik.csv", b"\n\n", "Filen är tom"),
        ("bild.csv", b"\x00\x01\x02binary\x00", "inte en textfil"),
        ("trasig.xlsx", b"PK\x03\x04 not really a zip", "inte en giltig Excel"),
        ("gammal.xls", b"\xd0\xcf\x11\xe0 old excel", "Spara filen"),
        ("fel.geojson", b'{"type": "Feature", "geometry": null}', "FeatureCollection"),
        ("trasig.geojson", b'{"type": "FeatureCollection", "features": [', "inte giltig JSON"),
        ("databas.gpkg", b"SQLite format 3\x00" + b"\x00" * 200, "GeoPackage"),
    ]
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (200 * 1024 * 1024))
    cases.append(("bomb.xlsx", bomb.getvalue(), "zip-bomb"))
    for name, data, message in cases:
        with pytest.raises(InvalidInput, match=message):
            upload(world.police_lead, name, data)
    settings.LAGESBILD_IMPORT_MAX_MB = 1
    with pytest.raises(InvalidInput, match="Filen är 3 MB; högst 1 MB"):
        upload(world.police_lead, "stor.csv", b"a;b\n" + b"1;2\n" * (600 * 1024))
    assert not ImportBatch.objects.exists()  # nothing half-made is left behind


def test_a_geopackage_of_polygons_is_refused_per_feature(world: World, tmp_path: Any) -> None:
    import numpy as np
    import pyogrio
    import shapely

    path = tmp_path / "omraden.gpkg"
    shapes = [shapely.box(18.08, 59.24, 18.09, 59.245), shapely.Point(18.09, 59.244)]
    pyogrio.raw.write(str(path), geometry=np.array(shapely.to_wkb(shapes), dtype=object),
                      field_data=[np.array(["2026-10-01 12:00"] * 2, dtype=object),
                                  np.array(["graffiti"] * 2, dtype=object)],
                      fields=["observerad", "kategori"], geometry_type="Unknown", crs="EPSG:4326", driver="GPKG")
    batch = check(upload(world.police_lead, "omraden.gpkg", path.read_bytes()), world.police_lead)
    assert batch.ok_count == 1 and batch.problem_count == 1
    assert batch.problems[0]["row"] == 1 and "ett område (polygon)" in batch.problems[0]["message"]


# --- Who may import, and undo ---------------------------------------------------------------------------------

def test_only_coordinators_and_leads_import_and_only_their_organisation_sees_its_imports(world: World) -> None:
    data = csv_bytes([HEADER, ["2026-10-01 22:15", "Klotter", "", "", "18,0912", "59,2437"]])
    for member in (world.police_reporter, world.viewer):
        with pytest.raises(Forbidden):
            upload(member, "a.csv", data)
    batch = upload(world.police_lead, "a.csv", data)
    with pytest.raises(DomainError):
        imports.get_batch(world.coordinator, batch.pk)  # the district's coordinator: another organisation
    assert imports.batches_of(world.coordinator) == []
    assert "organisation" not in batch.mapping["columns"].values()
    with pytest.raises(Forbidden):
        imports.save_mapping(world.police_lead, batch, {**batch.mapping["columns"], "Plats": "organisation"},
                             crs=0, swapped=False, visibility="forum")


def test_undo_withdraws_the_whole_batch_and_is_audited(world: World) -> None:
    from lagesbild.audit.models import AuditEvent

    data = csv_bytes([HEADER, ["2026-10-01 22:15", "Klotter", "", "", "18,0912", "59,2437"],
                      ["2026-10-01 23:15", "Klotter", "", "", "18,0912", "59,2437"]])
    batch = run(check(upload(world.police_lead, "a.csv", data), world.police_lead), world.police_lead)
    one = Deviation.objects.filter(import_batch=batch).first()
    assert one is not None
    from lagesbild.deviations import services

    services.edit_deviation(world.police_lead, one.pk, {"status": "reviewed"}, one.version)
    assert imports.changed_since_import(batch) == 1
    assert imports.undo(world.police_lead, batch) == 2
    assert not services.visible_deviations(world.police_lead).filter(import_batch=batch).exists()
    assert list(AuditEvent.objects.filter(object_type="importbatch").values_list("action", flat=True)
                .order_by("pk")) == ["import", "import_undone"]
    with pytest.raises(InvalidInput):
        imports.undo(world.police_lead, batch)
    # Undone, the same file may come in again.
    assert upload(world.police_lead, "a.csv", data).status == Status.UPLOADED


# --- The pages ------------------------------------------------------------------------------------------------

def test_the_pages_take_a_file_from_upload_to_undo(world: World) -> None:
    client = world.client(world.police_lead)
    page = client.get("/f/farsta/import/")
    assert page.status_code == 200 and "Importera avvikelser från en fil" in page.content.decode()
    refused = client.post("/f/farsta/import/", {"op": "upload", "file": SimpleUploadedFile("tom.csv", b"")})
    assert refused.status_code == 422 and "Filen är tom." in refused.content.decode()
    data = csv_bytes([["Datum", "Vad", "Lon", "Lat"], ["2026-10-01 22:15", "Tagg", "18,0912", "59,2437"],
                      ["2026-10-01 23:15", "Klotter", "18,0912", "59,2437"]])
    response = client.post("/f/farsta/import/", {"op": "upload", "file": SimpleUploadedFile("vakt.csv", data)})
    assert response.status_code == 302
    url = response["Location"]
    batch = ImportBatch.objects.get()
    assert url == f"/f/farsta/import/{batch.pk}/"
    page = client.get(url).content.decode()
    assert "Vad varje kolumn innehåller" in page and "2026-10-01 22:15" in page  # the first values
    assert '<option value="observed_at" selected>' in page
    mapping = {"op": "check", "column-0": "observed_at", "column-1": "category", "column-2": "x", "column-3": "y",
               "visibility": "organisation", "skip_duplicates": "on"}
    assert client.post(url, mapping).status_code == 302
    assert client.get(url + "status.json").json()["status"] == "checking"
    work()
    page = client.get(url).content.decode()
    assert "1 rad har problem" in page and "Kategorin ”Tagg” är inte kopplad" in page
    assert "Importera" not in page.split("Resultat av kontrollen")[1].split("Problem, rad för rad")[0].replace(
        "importeras", "")  # no import button while a row has a problem
    problems = client.get(url + "problem.csv")
    assert problems.content.decode("utf-8-sig").splitlines()[1].startswith("2,Vad,Tagg,")
    values = sorted(ImportBatch.objects.get().mapping["categories"])
    assert values == ["Klotter", "Tagg"]
    client.post(url, {**mapping, "category-0": "graffiti", "category-1": "graffiti"})
    work()
    page = client.get(url).content.decode()
    assert "Importera 2 avvikelser" in page
    assert client.post(url, {"op": "import"}).status_code == 302
    work()
    page = client.get(url).content.decode()
    assert "2 avvikelser importerades" in page
    imported = Deviation.objects.filter(import_batch=batch)
    assert set(imported.values_list("visibility", flat=True)) == {"organisation"}
    detail = world.client(world.police_reporter).get(f"/api/forums/farsta/deviations/{imported[0].pk}").json()
    assert detail["sourceLabel"] == f"Import {batch.pk}, {timezone.localdate():%Y-%m-%d} (vakt.csv)"
    assert client.post(url, {"op": "undo"}).status_code == 302
    assert "Importen ångrades" in client.get(url).content.decode()
    assert not imported.filter(withdrawn_at__isnull=True).exists()
    listing = client.get("/f/farsta/import/").content.decode()
    assert "vakt.csv" in listing and "Ångrad" in listing


def test_another_organisation_learns_nothing_of_an_import(world: World) -> None:
    data = csv_bytes([HEADER, ["2026-10-01 22:15", "Klotter", "", "", "18,0912", "59,2437"]])
    batch = run(check(upload(world.police_lead, "polisens-lista.csv", data), world.police_lead), world.police_lead)
    deviation = Deviation.objects.get(import_batch=batch)
    detail = world.client(world.coordinator).get(f"/api/forums/farsta/deviations/{deviation.pk}").json()
    assert detail["sourceLabel"] == "Import"  # not which file
    log = world.client(world.coordinator).get("/f/farsta/logg/").content.decode()
    assert "polisens-lista" not in log
    assert world.client(world.coordinator).get(f"/f/farsta/import/{batch.pk}/").status_code == 404


def test_what_changes_between_the_check_and_the_import_is_checked_again(world: World) -> None:
    from lagesbild.deviations import categories

    data = csv_bytes([HEADER, ["2026-10-01 22:15", "Klotter", "Torget", "", "18,0912", "59,2437"],
                      ["2026-10-01 23:15", "Klotter", "Torget", "", "18,0912", "59,2437"]])
    batch = check(upload(world.police_lead, "a.csv", data), world.police_lead)
    assert batch.ok_count == 2
    # A colleague reports the first row by hand meanwhile: it is left out, the other comes in.
    colleague = world.report(world.police_reporter, category="graffiti", lon=18.0912, lat=59.2437,
                             place_name="Torget", observed_at=dt.datetime(2026, 10, 1, 20, 15, tzinfo=dt.UTC))
    batch = run(batch, world.police_lead)
    assert (batch.status, batch.imported_count) == (Status.IMPORTED, 1)
    assert Deviation.objects.get(import_batch=batch).observed_at.hour == 21
    # The forum stops using the category between the check and the import: nothing is written.
    again = check(upload(world.police_lead, "b.csv", data.replace(b"2026-10-01", b"2026-10-05")), world.police_lead)
    assert again.ok_count == 2
    categories.set_hidden(world.coordinator, "graffiti", True)
    again = run(again, world.police_lead)
    assert again.status == Status.CHECKED and again.problem_count == 2
    assert "Något har ändrats sedan kontrollen" in again.error
    assert not Deviation.objects.filter(import_batch=again).exists()
    assert colleague.pk


# --- What outside testing found -------------------------------------------------------------------------------

def test_files_built_to_break_a_reader_are_refused_cleanly(world: World, tmp_path: Any) -> None:
    import sqlite3

    nested = b'{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point",' \
             b'"coordinates":[18.09,59.244]},"properties":{"a":' + b"[" * 2000 + b"]" * 2000 + b"}}]}"
    path = tmp_path / "x.gpkg"
    gpkg = _gpkg_of_points(path)
    db = sqlite3.connect(gpkg)
    db.execute("UPDATE gpkg_spatial_ref_sys SET organization_coordsys_id = 'abc' WHERE srs_id = 4326")
    db.commit()
    db.close()
    with pytest.raises(InvalidInput, match="Filen kan inte läsas som GEOJSON"):
        upload(world.police_lead, "djup.geojson", nested)
    with pytest.raises(InvalidInput, match="Filen har 3000 kolumner; högst 500"):
        upload(world.police_lead, "bred.csv", ";".join(["Datum"] * 3000).encode() + b"\n1;2\n")
    # A coordinate system code that is not a number is no code: the positions decide.
    batch = upload(world.police_lead, "konstig.gpkg", path.read_bytes())
    assert batch.layout["crs"] is None and batch.layout["headers"] == ["observerad", "kategori"]
    assert ImportBatch.objects.count() == 1  # the refused uploads left nothing behind


def _gpkg_of_points(path: Any) -> Any:
    import numpy as np
    import pyogrio
    import shapely

    pyogrio.raw.write(str(path), geometry=np.array(shapely.to_wkb([shapely.Point(18.09, 59.244)]), dtype=object),
                      field_data=[np.array(["2026-10-01 12:00"], dtype=object), np.array(["graffiti"], dtype=object)],
                      fields=["observerad", "kategori"], geometry_type="Point", crs="EPSG:4326", driver="GPKG")
    return path


def test_an_unclosed_quote_stops_the_check_instead_of_swallowing_rows(world: World) -> None:
    data = (b'Datum;Kategori;Lon;Lat;Beskrivning\n2026-10-01 12:00;graffiti;18.09;59.244;"Taggar\n'
            b'2026-10-01 13:00;graffiti;18.09;59.244;ok\n')
    with pytest.raises(InvalidInput, match=r"Rad 2 .*citattecken öppnas men stängs inte"):
        upload(world.police_lead, "a.csv", data)
    # Further down the file, past the first rows the upload reads, the check finds it.
    late = data.replace(b'"Taggar', b"Taggar").replace(b"ok\n", b'"ok\n')
    late = b"Datum;Kategori;Lon;Lat;Beskrivning\n" + b"2026-10-02 12:00;graffiti;18.09;59.244;x\n" * 10 + \
        late.split(b"\n", 1)[1]
    batch = check(upload(world.police_lead, "b.csv", late), world.police_lead)
    assert batch.status == Status.UPLOADED and "citattecken" in batch.error
    assert not Deviation.objects.filter(source="import").exists()


def test_excel_separator_line_swedish_dot_times_and_number_dates(world: World) -> None:
    data = (b"sep=;\nDatum;Kategori;Lon;Lat\n2026-10-01 14.30;graffiti;18.09;59.244\n")
    batch = upload(world.police_lead, "a.csv", data)
    assert batch.layout["headers"] == ["Datum", "Kategori", "Lon", "Lat"]
    run(check(batch, world.police_lead), world.police_lead)
    assert Deviation.objects.get(import_batch=batch).observed_at == dt.datetime(2026, 10, 1, 12, 30, tzinfo=dt.UTC)
    sheet = _xlsx([["Datum", "Kategori", "Lon", "Lat"], [20261002, "graffiti", 18.09, 59.244],
                   [None, None, None, None], [20261003, "", 18.09, 59.244]])
    batch = check(upload(world.police_lead, "b.xlsx", sheet), world.police_lead)
    assert [(p["row"], p["column"]) for p in batch.problems] == [(4, "Kategori")]  # the sheet's row number
    assert batch.ok_count == 1


def test_without_an_area_a_local_zone_is_not_guessed(world: World) -> None:
    rows = [["Tid", "Typ", "X", "Y"]] + [["2026-10-01 12:00", "graffiti", f"{x:.2f}", f"{y:.2f}"]
                                         for x, y in _positions(3011)]
    outsider = world.outsider  # Skärholmen has no area drawn
    batch = check(upload(outsider, "xy.csv", csv_bytes(rows)), outsider)
    assert batch.status == Status.UPLOADED and "Välj filens koordinatsystem" in batch.error
    batch = check(batch, outsider, crs=3011)
    assert batch.problem_count == 0 and batch.mapping["used_crs"]["crs"] == 3011


def test_geojson_property_names_with_spaces_are_read(world: World) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [18.09, 59.244]},
               "properties": {" Datum ": "2026-10-01 12:00", "Kategori ": "graffiti"}}
    data = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    batch = check(upload(world.police_lead, "a.geojson", data), world.police_lead)
    assert batch.ok_count == 1, batch.problems


def test_the_nul_character_is_refused_per_row_and_in_column_names(world: World) -> None:
    """NUL is not text (PostgreSQL cannot store it): a row holding one is a problem of its own, shown without
    it; the rest of the file is fine. A column name holding one refuses the file, leaving nothing behind."""
    def feature(place: str) -> dict[str, Any]:
        return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [18.09, 59.244]},
                "properties": {"Datum": "2026-10-01 12:00", "Kategori": "graffiti", "Plats": place}}

    data = json.dumps({"type": "FeatureCollection", "features": [feature("nul|a\x00b"), feature("Torget")]}).encode()
    batch = check(upload(world.police_lead, "nul.geojson", data), world.police_lead)
    assert (batch.status, batch.ok_count, batch.problem_count) == (Status.CHECKED, 1, 1), batch.problems
    [problem] = batch.problems
    assert "NUL" in problem["message"] and "\x00" not in problem["value"] and problem["row"] == 1
    batches = ImportBatch.objects.count()
    header = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [18.09, 59.244]},
              "properties": {"Da\x00tum": "2026-10-01 12:00"}}
    with pytest.raises(InvalidInput, match="NUL"):
        upload(world.police_lead, "nul2.geojson", json.dumps({"type": "FeatureCollection",
                                                              "features": [header]}).encode())
    assert ImportBatch.objects.count() == batches


def test_what_one_organisation_mapped_by_hand_is_not_offered_to_another(world: World) -> None:
    rows = [["Datum", "Misstänkt plats", "Lon", "Lat"], ["2026-10-01 12:00", "Langning vid skolan", "18.09", "59.244"]]
    batch = check(upload(world.police_lead, "a.csv", csv_bytes(rows)), world.police_lead,
                  columns={"Misstänkt plats": "category"}, categories={"Langning vid skolan": "graffiti"})
    check(batch, world.police_lead, categories={"Langning vid skolan": "graffiti"})
    housing_lead = world.housing_reporter
    housing_lead.role = "org_lead"
    housing_lead.save()
    other = upload(housing_lead, "b.csv", csv_bytes(rows))
    assert other.mapping["columns"]["Misstänkt plats"] == ""
    other = check(other, housing_lead, columns={"Misstänkt plats": "category"})
    assert other.mapping["categories"] == {"Langning vid skolan": ""}


def test_an_import_keeps_its_counts_but_not_the_files_text(world: World) -> None:
    rows = [["Datum", "Kategori", "Lon", "Lat", "Anteckning"],
            ["2026-10-01 12:00", "graffiti", "18.09", "59.244", "Anna Andersson 19800101-1234"]]
    batch = run(check(upload(world.police_lead, "a.csv", csv_bytes(rows)), world.police_lead), world.police_lead)
    batch.refresh_from_db()
    assert batch.imported_count == 1 and batch.layout["samples"] == []
    assert "Andersson" not in json.dumps(batch.layout) + json.dumps(batch.problems)


def test_a_forum_that_starts_refusing_personal_data_stops_a_checked_import(world: World) -> None:
    rows = [HEADER, ["2026-10-01 22:15", "Klotter", "Torget", "Ring 070-123 45 67", "18,0912", "59,2437"]]
    batch = check(upload(world.police_lead, "a.csv", csv_bytes(rows)), world.police_lead)
    assert batch.ok_count == 1 and batch.problems[0]["kind"] == "warning"
    world.forum.block_personal_data = True
    world.forum.save()
    batch = run(batch, world.police_lead)
    assert batch.status == Status.CHECKED and batch.problem_count == 1
    assert not Deviation.objects.filter(import_batch=batch).exists()


def test_a_report_made_while_an_import_writes(world: World) -> None:
    """While an import writes its rows (here in another thread, as the background worker does), a member
    reports. PostgreSQL takes the report at once. SQLite has one writer: the report waits, and when the import
    holds on past SQLite's wait, the member gets a 503 that says to try again, never a 500, and nothing of it
    is half-saved."""
    written, release = threading.Event(), threading.Event()
    [graffiti] = [c for c in forum_categories(world.forum) if c.key == "graffiti"]

    def import_in_progress() -> None:
        from django.db import connection as own

        try:
            with transaction.atomic(), bulk.Writer(world.coordinator, None, "import") as writer:  # type: ignore[arg-type]
                writer.write([imports.Staged(1, graffiti.pk, world.coordinator.organisation_id, 18.09, 59.244, WHEN,
                                             None, None, "Importerad", "", "medium", "forum", "new")])
                written.set()
                release.wait(30)
        finally:
            own.close()

    police = world.client(world.police_reporter)  # signed in before: signing in writes too
    worker = threading.Thread(target=import_in_progress)
    worker.start()
    try:
        assert written.wait(30)
        before = Deviation.objects.count()
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA busy_timeout=200")  # rather than five seconds, for the test's sake
        response = post_json(police, f"{BASE}/deviations", new_deviation(description="Under importen"))
        if connection.vendor == "sqlite":
            assert response.status_code == 503, response.content
            assert response["Retry-After"] == "30"
            assert "Försök igen" in response.json()["error"]["message"]
            assert Deviation.objects.count() == before
        else:
            assert response.status_code == 201, response.content
    finally:
        release.set()
        worker.join()
    assert Deviation.objects.filter(place_name="Importerad").count() == 1
    response = post_json(police, f"{BASE}/deviations", new_deviation(description="Efter importen"))
    assert response.status_code == 201, response.content


def test_a_row_the_database_refuses_leaves_nothing_of_the_import(world: World) -> None:
    """The database checks an import's foreign keys only as it commits (a million rows are checked faster at
    once). When it refuses one row there, the error reaches the caller as Django's, the rows before it go with
    the rollback, and the connection takes the next write."""
    [graffiti] = [c for c in forum_categories(world.forum) if c.key == "graffiti"]

    def staged(n: int, category_id: int) -> imports.Staged:
        return imports.Staged(n, category_id, world.coordinator.organisation_id, 18.09, 59.244, WHEN, None, None,
                              f"Block {n}", "", "medium", "forum", "new")

    before = Deviation.objects.count()
    with pytest.raises(IntegrityError):
        with transaction.atomic(), bulk.Writer(world.coordinator, None, "import") as writer:  # type: ignore[arg-type]
            writer.write([staged(n, graffiti.pk) for n in range(20)])
            writer.write([staged(20, 987654321), *(staged(n, graffiti.pk) for n in range(21, 30))])
    assert Deviation.objects.count() == before
    with transaction.atomic(), bulk.Writer(world.coordinator, None, "import") as writer:  # type: ignore[arg-type]
        writer.write([staged(n, graffiti.pk) for n in range(25)])
    assert Deviation.objects.filter(place_name__startswith="Block").count() == 25


def test_references_without_a_database_constraint_are_kept_by_django(world: World) -> None:
    """Reporter, import batch and police flag have no foreign-key constraint in the database (an import of a
    million rows would check each one per row); deleting what they point to, as the admin site does, still
    leaves no deviation pointing at nothing."""
    batch = check(upload(world.police_lead, "a.csv", csv_bytes(
        [HEADER, ["2026-10-01 22:15", "Klotter", "Torget", "Nytt klotter", "18,0912", "59,2437"]])), world.police_lead)
    batch = run(batch, world.police_lead)
    imported = Deviation.objects.get(import_batch=batch)
    reported = world.report(world.housing_reporter)
    Deviation.objects.filter(pk=reported.pk).update(police_flagged_by=world.housing_reporter.user,
                                                    police_flagged_org=world.housing_reporter.organisation)
    world.housing_reporter.user.delete()
    batch.delete()
    reported.refresh_from_db()
    imported.refresh_from_db()
    assert reported.reporter_id is None and reported.police_flagged_by_id is None
    assert reported.police_flagged_org_id == world.housing_reporter.organisation_id
    assert imported.import_batch_id is None
