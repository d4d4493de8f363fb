"""Domain functions for deviations, tested without HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import services
from lagesbild.deviations.models import Deviation, Photo
from lagesbild.errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge, UnsupportedMedia
from tests.conftest import INSIDE, World, image_bytes

pytestmark = pytest.mark.django_db


def ids(queryset: object) -> set[int]:
    return set(queryset.values_list("pk", flat=True))  # type: ignore[attr-defined]


def test_report_derives_sweref_and_records_history(world: World) -> None:
    deviation = world.report(world.police_reporter, description="Klotter på  muren ", place_name="Torget")
    assert deviation.organisation == world.police
    assert deviation.reporter == world.police_reporter.user
    assert deviation.description == "Klotter på  muren"
    # Farsta centrum in SWEREF 99 TM is about 676 km east, 6 571 km north.
    assert 675_000 < deviation.sweref_x < 677_000
    assert 6_570_000 < deviation.sweref_y < 6_572_000
    event = AuditEvent.objects.get(object_type="deviation", object_id=deviation.pk)
    assert event.action == "create"
    assert event.actor == world.police_reporter.user
    assert event.changes["category"] == "graffiti"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lon": 181.0}, "lon"),
        ({"lat": -91.0}, "lat"),
        ({"lon": 17.0, "lat": 59.0}, "lon"),  # valid, but outside the forum's area
        ({"category": "no_such_category"}, "category"),
        ({"observed_at": timezone.now() + dt.timedelta(hours=1)}, "observed_at"),
        ({"observed_at": dt.datetime(2026, 1, 1, 12, 0)}, "observed_at"),  # no time zone
        ({"observed_until": timezone.now() - dt.timedelta(days=2)}, "observed_until"),  # before observed_at
        ({"description": "x" * 4001}, "description"),
        ({"place_name": "x" * 201}, "place_name"),
        ({"severity": "extreme"}, "severity"),
        ({"visibility": "everyone"}, "visibility"),
        ({"visibility": "named", "shared_with": []}, "shared_with"),
    ],
)
def test_report_rejects_bad_input_and_writes_nothing(world: World, overrides: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        world.report(world.police_reporter, **overrides)
    assert excinfo.value.field == field
    assert excinfo.value.message
    assert Deviation.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_named_visibility_refuses_organisations_of_another_forum(world: World) -> None:
    foreign = world.outsider.organisation
    with pytest.raises(InvalidInput) as excinfo:
        world.report(world.police_reporter, visibility="named", shared_with=[foreign.pk])
    assert excinfo.value.field == "shared_with"


def test_viewer_cannot_report(world: World) -> None:
    with pytest.raises(Forbidden):
        world.report(world.viewer)


def test_visibility_is_enforced_for_every_organisation(world: World) -> None:
    public = world.report(world.police_reporter)
    own = world.report(world.police_reporter, visibility="organisation")
    named = world.report(world.police_reporter, visibility="named", shared_with=[world.housing.pk])
    assert ids(services.visible_deviations(world.police_lead)) == {public.pk, own.pk, named.pk}
    assert ids(services.visible_deviations(world.housing_reporter)) == {public.pk, named.pk}
    assert ids(services.visible_deviations(world.viewer)) == {public.pk}
    # Coordinators see what their organisation may see, no more.
    assert ids(services.visible_deviations(world.coordinator)) == {public.pk}
    assert ids(services.visible_deviations(world.outsider)) == set()
    with pytest.raises(NotFound):
        services.get_visible_deviation(world.viewer, own.pk)


def test_filter_by_category_parent_includes_children(world: World) -> None:
    graffiti = world.report(world.police_reporter, category="graffiti")
    damage = world.report(world.police_reporter, category="damage")
    litter = world.report(world.police_reporter, category="litter")
    base = services.visible_deviations(world.police_lead)
    by = lambda keys: ids(services.apply_filter(base, world.forum, services.DeviationFilter(categories=keys)))  # noqa: E731
    assert by(["damage"]) == {graffiti.pk, damage.pk}
    assert by(["graffiti"]) == {graffiti.pk}
    assert by(["graffiti", "littering"]) == {graffiti.pk, litter.pk}
    with pytest.raises(InvalidInput):
        by(["nonsense"])


def test_filter_by_time_organisation_status_text_and_bbox(world: World) -> None:
    now = timezone.now()
    old = world.report(world.police_reporter, observed_at=now - dt.timedelta(days=40), place_name="Östra torget")
    new = world.report(world.housing_reporter, observed_at=now - dt.timedelta(days=1), lon=18.14, lat=59.26,
                       description="Trasig LAMPA vid Ågatan")
    base = services.visible_deviations(world.police_lead)

    def run(**kwargs: object) -> set[int]:
        return ids(services.apply_filter(base, world.forum, services.DeviationFilter(**kwargs)))  # type: ignore[arg-type]

    assert run(start=now - dt.timedelta(days=30)) == {new.pk}
    assert run(end=now - dt.timedelta(days=30)) == {old.pk}
    assert run(organisations=[world.housing.pk]) == {new.pk}
    assert run(statuses=["new"]) == {old.pk, new.pk}
    assert run(statuses=["resolved"]) == set()
    assert run(q="östra") == {old.pk}  # case folding of å, ä, ö works on SQLite too
    assert run(q="lampa vid ågatan") == {new.pk}
    assert run(bbox=(18.08, 59.24, 18.10, 59.25)) == {old.pk}
    assert run(bbox=(18.13, 59.25, 18.15, 59.27)) == {new.pk}
    with pytest.raises(InvalidInput):
        run(start=now, end=now - dt.timedelta(days=1))
    with pytest.raises(InvalidInput):
        run(organisations=[world.outsider.organisation.pk])
    with pytest.raises(InvalidInput):
        run(statuses=["closed"])


def test_spatial_index_follows_inserts_moves_and_deletes(world: World) -> None:
    deviation = world.report(world.police_reporter)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT min_lon, min_lat FROM deviations_deviation_rtree WHERE id = %s", [deviation.pk])
            lon, lat = cursor.fetchone()
        assert lon == pytest.approx(INSIDE[0], abs=1e-4)
        assert lat == pytest.approx(INSIDE[1], abs=1e-4)
    box = (18.139, 59.259, 18.141, 59.261)
    visible = services.visible_deviations(world.police_lead)
    assert ids(services.apply_filter(visible, world.forum, services.DeviationFilter(bbox=box))) == set()
    services.edit_deviation(world.police_reporter, deviation.pk, {"lon": 18.14, "lat": 59.26}, version=1)
    assert ids(services.apply_filter(visible, world.forum, services.DeviationFilter(bbox=box))) == {deviation.pk}
    Deviation.objects.filter(pk=deviation.pk).delete()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM deviations_deviation_rtree")
            assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_a_bulk_load_is_in_the_spatial_index_and_later_reports_are_too(world: World) -> None:
    """SQLite's bulk path indexes its rows at the end, with the insert trigger off meanwhile; the trigger is back
    for what comes after. A box finds exactly the rows inside it, on both databases."""
    from django.db import transaction

    from lagesbild.deviations import bulk

    spots = [(18.06 + (k % 40) * 0.002, 59.225 + (k // 40) * 0.001) for k in range(2000)]
    rows = graffiti_rows(world, spots)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # sqlite_stat1 exists from here on
            cursor.execute("DELETE FROM sqlite_stat1")
    indexes_before = sqlite_indexes()
    # Told of a large file: SQLite sets the table's plain indexes aside and builds them afresh at the end.
    with transaction.atomic(), bulk.Writer(  # type: ignore[arg-type]
            world.housing_reporter, None, "import", expected=10**6) as writer:
        assert connection.vendor != "sqlite" or len(sqlite_indexes()) < len(indexes_before) - 5
        writer.write(rows)
    assert sqlite_indexes() == indexes_before
    if connection.vendor == "sqlite":  # the load gathered the planner's statistics (spatial_index)
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA integrity_check")  # every index holds every row
            assert cursor.fetchall() == [("ok",)]
            cursor.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'deviation_forum_observed'")
            assert int(cursor.fetchone()[0].split()[0]) >= 1000
    later = world.report(world.housing_reporter, lon=18.1405, lat=59.2605)
    visible = services.visible_deviations(world.viewer)
    box = (18.07, 59.23, 18.09, 59.24)
    inside = sum(1 for lon, lat in spots if box[0] <= lon <= box[2] and box[1] <= lat <= box[3])
    assert services.apply_filter(visible, world.forum, services.DeviationFilter(bbox=box)).count() == inside > 50
    assert ids(services.apply_filter(visible, world.forum, services.DeviationFilter(
        bbox=(18.14, 59.26, 18.141, 59.261)))) == {later.pk}
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM deviations_deviation_rtree")
            assert cursor.fetchone()[0] == Deviation.objects.count() == 2001
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s",
                           ["deviations_deviation_rtree_%"])
            assert cursor.fetchone()[0] == 3


def graffiti_rows(world: World, spots: list[tuple[float, float]]) -> list[Any]:
    """Rows as an import's check hands them to the bulk writer: graffiti, forum-wide, now, at `spots`."""
    from types import SimpleNamespace

    from lagesbild.deviations.models import Category

    category = Category.objects.get(key="graffiti", forum__isnull=True).pk
    now = timezone.now()
    return [SimpleNamespace(lon=lon, lat=lat, category_id=category, observed_at=now, observed_until=None,
                            reported_at=None, place_name="", description="", organisation_id=world.housing.pk,
                            severity="medium", visibility="forum", status="new") for lon, lat in spots]


def sqlite_indexes() -> list[tuple[str, str]]:
    """SQLite's indexes, as made (none listed on PostgreSQL)."""
    if connection.vendor != "sqlite":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name")
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_a_bulk_load_that_fails_keeps_nothing_and_leaves_the_triggers_as_they_were(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import OperationalError, transaction

    from lagesbild.deviations import bulk, counts

    def state() -> tuple[Any, ...]:
        if connection.vendor != "sqlite":
            return (Deviation.objects.count(),)
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
            triggers = cursor.fetchall()
            cursor.execute("PRAGMA cache_size")
            return Deviation.objects.count(), triggers, cursor.fetchone(), sqlite_indexes()

    rows = graffiti_rows(world, [(18.06 + k * 0.001, 59.23) for k in range(50)])
    world.report(world.housing_reporter)
    before = state()
    assert before[0] == 1
    with pytest.raises(ValueError), transaction.atomic():
        with bulk.Writer(world.housing_reporter, None, "import", 10**6) as writer:  # type: ignore[arg-type]
            writer.write(rows)
            # Told of a large file: set aside meanwhile.
            assert connection.vendor != "sqlite" or len(sqlite_indexes()) < len(before[-1]) - 5
            raise ValueError("the file broke off")
    assert state() == before
    # A caller that catches the error inside its transaction cannot keep the rows, unindexed and uncounted.
    with transaction.atomic():
        try:
            with bulk.Writer(world.housing_reporter, None, "import", 10**6) as writer:  # type: ignore[arg-type]
                writer.write(rows)
                raise ValueError("the file broke off")
        except ValueError:
            pass
    assert state() == before
    # Nor when indexing or counting them at the end fails: SQLite's page cache is set back all the same.
    if connection.vendor == "sqlite":
        def broken(*args: Any) -> None:
            raise OperationalError("disk I/O error")

        monkeypatch.setattr(counts, "add_loaded", broken)
        with pytest.raises(OperationalError), transaction.atomic():
            with bulk.Writer(world.housing_reporter, None, "import", 10**6) as writer:  # type: ignore[arg-type]
                writer.write(rows)
        assert state() == before


@pytest.mark.django_db(transaction=True)
def test_indexes_built_again_keep_their_statistics_when_gathering_them_is_refused(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropping an index drops SQLite's statistics of it; a load that builds the indexes again puts them back,
    for when gathering them afresh after the load is refused (others writing): without them the planner
    guesses, and a city's hexagons took seconds rather than milliseconds (bench/results)."""
    from django.db import OperationalError, transaction

    from lagesbild import spatial_index
    from lagesbild.deviations import bulk

    rows = graffiti_rows(world, [(18.06 + k * 0.0001, 59.23) for k in range(300)])
    world.report(world.housing_reporter)

    def statistics() -> list[tuple[str, str]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'deviations_deviation' AND idx IS NOT NULL "
                           "ORDER BY idx")
            return cursor.fetchall()

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        before = statistics()
        assert {"deviation_forum_observed", "deviation_restricted"} <= {idx for idx, _stat in before}

    def refused(*args: Any) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr(spatial_index, "refresh_statistics", refused)
    with transaction.atomic(), bulk.Writer(  # type: ignore[arg-type]
            world.housing_reporter, None, "import", expected=10**6) as writer:
        writer.write(rows)
    assert Deviation.objects.filter(forum=world.forum).count() == 301
    if connection.vendor == "sqlite":
        assert statistics() == before


def test_pages_are_keyset_paginated_newest_first(world: World) -> None:
    now = timezone.now()
    made = [world.report(world.police_reporter, observed_at=now - dt.timedelta(hours=h)) for h in range(1, 6)]
    queryset = services.visible_deviations(world.police_lead)
    first = services.page_of_features(queryset, limit=2)
    assert first.number_matched == 5
    assert [f["id"] for f in orjson.loads(first.features)] == [made[0].pk, made[1].pk]
    second = services.page_of_features(queryset, limit=2, cursor=first.next_cursor)
    assert [f["id"] for f in orjson.loads(second.features)] == [made[2].pk, made[3].pk]
    third = services.page_of_features(queryset, limit=2, cursor=second.next_cursor)
    assert [f["id"] for f in orjson.loads(third.features)] == [made[4].pk]
    assert third.next_cursor is None
    assert (first.number_returned, third.number_returned) == (2, 1)
    with pytest.raises(InvalidInput):
        services.page_of_features(queryset, cursor="not-a-cursor")
    with pytest.raises(InvalidInput):
        services.page_of_features(queryset, limit=0)


def test_edit_checks_version_and_records_the_difference(world: World) -> None:
    deviation = world.report(world.police_reporter, description="Före")
    services.edit_deviation(world.police_reporter, deviation.pk, {"description": "Efter"}, version=1)
    deviation.refresh_from_db()
    assert (deviation.description, deviation.version) == ("Efter", 2)
    event = AuditEvent.objects.get(object_id=deviation.pk, action="update")
    assert event.changes == {"description": ["Före", "Efter"]}
    with pytest.raises(Conflict):
        services.edit_deviation(world.police_reporter, deviation.pk, {"description": "Stale"}, version=1)
    deviation.refresh_from_db()
    assert deviation.description == "Efter"


def test_edit_permissions_by_role(world: World) -> None:
    deviation = world.report(world.police_reporter)
    # Someone else in another organisation may neither edit nor change status.
    with pytest.raises(Forbidden):
        services.edit_deviation(world.housing_reporter, deviation.pk, {"description": "x"}, version=1)
    with pytest.raises(Forbidden):
        services.edit_deviation(world.housing_reporter, deviation.pk, {"status": "resolved"}, version=1)
    # A reporter cannot change the status of their own deviation ...
    with pytest.raises(Forbidden):
        services.edit_deviation(world.police_reporter, deviation.pk, {"status": "resolved"}, version=1)
    # ... but their organisation lead can, and can edit it.
    services.edit_deviation(world.police_lead, deviation.pk, {"status": "reviewed", "severity": "high"}, version=1)
    # The coordinator may move it on, but not rewrite another organisation's text.
    services.edit_deviation(world.coordinator, deviation.pk, {"status": "resolved"}, version=2)
    with pytest.raises(Forbidden):
        services.edit_deviation(world.coordinator, deviation.pk, {"description": "x"}, version=3)
    deviation.refresh_from_db()
    assert (deviation.status, deviation.severity, deviation.version) == ("resolved", "high", 3)


def test_edit_refuses_unknown_fields_and_values(world: World) -> None:
    deviation = world.report(world.police_reporter)
    with pytest.raises(InvalidInput) as excinfo:
        services.edit_deviation(world.police_reporter, deviation.pk, {"organisation": 1}, version=1)
    assert excinfo.value.field == "organisation"
    with pytest.raises(InvalidInput):
        services.edit_deviation(world.police_lead, deviation.pk, {"status": "closed"}, version=1)
    with pytest.raises(InvalidInput):
        services.edit_deviation(world.police_reporter, deviation.pk, {"lon": 10.0}, version=1)
    assert Deviation.objects.get(pk=deviation.pk).version == 1


def test_withdraw_hides_but_keeps_history(world: World) -> None:
    deviation = world.report(world.police_reporter)
    with pytest.raises(Forbidden):
        services.withdraw_deviation(world.housing_reporter, deviation.pk)
    services.withdraw_deviation(world.police_reporter, deviation.pk)
    assert not services.visible_deviations(world.police_lead).exists()
    assert Deviation.objects.filter(pk=deviation.pk, withdrawn_at__isnull=False).exists()
    assert list(AuditEvent.objects.filter(object_id=deviation.pk).values_list("action", flat=True)) == [
        "create", "withdraw"]


def test_comments(world: World) -> None:
    deviation = world.report(world.police_reporter)
    comment = services.add_comment(world.housing_reporter, deviation.pk, "  Vi har sett samma sak.  ")
    assert comment.body == "Vi har sett samma sak."
    assert comment.organisation == world.housing
    with pytest.raises(InvalidInput):
        services.add_comment(world.housing_reporter, deviation.pk, "   ")
    with pytest.raises(InvalidInput):
        services.add_comment(world.housing_reporter, deviation.pk, "x" * 2001)
    with pytest.raises(Forbidden):
        services.add_comment(world.viewer, deviation.pk, "Hej")
    hidden = world.report(world.police_reporter, visibility="organisation")
    with pytest.raises(NotFound):
        services.add_comment(world.housing_reporter, hidden.pk, "Hej")


def stored_files() -> list[str]:
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def upload(name: str, content: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def test_photos_are_reencoded_without_exif(world: World) -> None:
    from django.core.files.storage import default_storage
    from PIL import Image

    data = services.DeviationInput(category="graffiti", lon=INSIDE[0], lat=INSIDE[1],
                                   observed_at=timezone.now())
    original = image_bytes("JPEG", exif_gps=True)
    assert b"SecretCam" in original
    deviation = services.report_deviation(world.police_reporter, data, [
        upload("a.jpg", original), upload("b.png", image_bytes("PNG"), "image/png"),
        upload("c.webp", image_bytes("WEBP"), "image/webp")])
    photos = list(deviation.photos.all())
    assert len(photos) == 3
    for photo in photos:
        with default_storage.open(photo.image) as handle:
            stored = handle.read()
        assert b"SecretCam" not in stored
        with Image.open(default_storage.open(photo.image)) as image:
            assert image.format == "JPEG"
            assert not image.getexif()
        assert default_storage.exists(photo.thumbnail)


def test_heic_photos_from_phones_are_accepted(world: World) -> None:
    from django.core.files.storage import default_storage
    from PIL import Image

    data = services.DeviationInput(category="graffiti", lon=INSIDE[0], lat=INSIDE[1], observed_at=timezone.now())
    deviation = services.report_deviation(world.police_reporter, data, [
        upload("IMG_0001.HEIC", image_bytes("HEIF"), "image/heic")])
    [photo] = deviation.photos.all()
    with Image.open(default_storage.open(photo.image)) as image:
        assert (image.format, image.size) == ("JPEG", (64, 48))


def test_bad_photos_leave_nothing_behind(world: World, settings: object, tmp_path: object) -> None:

    data = services.DeviationInput(category="graffiti", lon=INSIDE[0], lat=INSIDE[1],
                                   observed_at=timezone.now())
    with pytest.raises(UnsupportedMedia):
        services.report_deviation(world.police_reporter, data, [
            upload("ok.jpg", image_bytes()), upload("evil.jpg", b"%PDF-1.4 not an image")])
    settings.LAGESBILD_PHOTO_MAX_BYTES = 100  # type: ignore[attr-defined]
    with pytest.raises(TooLarge):
        services.report_deviation(world.police_reporter, data, [upload("big.jpg", image_bytes())])
    settings.LAGESBILD_PHOTO_MAX_BYTES = 15 * 2**20  # type: ignore[attr-defined]
    settings.LAGESBILD_PHOTOS_PER_DEVIATION = 1  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput):
        services.report_deviation(world.police_reporter, data, [upload("1.jpg", image_bytes()),
                                                                upload("2.jpg", image_bytes())])
    assert Deviation.objects.count() == 0
    assert Photo.objects.count() == 0
    assert stored_files() == []


def test_a_failure_after_files_are_written_removes_them(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the database write fails after the photo files are on disk, the files go too."""

    from lagesbild.audit import services as audit_services

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(audit_services, "record", fail)
    data = services.DeviationInput(category="graffiti", lon=INSIDE[0], lat=INSIDE[1],
                                   observed_at=timezone.now())
    with pytest.raises(RuntimeError):
        services.report_deviation(world.police_reporter, data, [upload("ok.jpg", image_bytes())])
    assert Deviation.objects.count() == 0
    assert stored_files() == []


@pytest.mark.django_db(transaction=True)
def test_racing_edits_from_two_connections_let_exactly_one_win(world: World) -> None:
    """Two people save the same version at once, each on their own database connection."""
    import threading

    from django.db import connections

    deviation = world.report(world.police_reporter)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def edit(membership: object, text: str) -> None:
        try:
            barrier.wait()
            services.edit_deviation(membership, deviation.pk, {"description": text}, version=1)  # type: ignore[arg-type]
            outcomes.append("saved")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=edit, args=(world.police_reporter, "A")),
               threading.Thread(target=edit, args=(world.police_lead, "B"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "saved"]
    deviation.refresh_from_db()
    assert deviation.version == 2
    assert AuditEvent.objects.filter(object_id=deviation.pk, action="update").count() == 1


@pytest.mark.sqlite
@pytest.mark.parametrize("name", ["deviation_forum_observed", "deviation_restricted", "deviation_count_category"])
def test_sqlites_wider_indexes_stay_wide_even_after_django_remakes_the_table(db: None, name: str) -> None:
    """The model declares the time index as (forum, observed_at), as PostgreSQL keeps it, and two others with
    INCLUDE columns that SQLite leaves out; SQLite's hold those columns in their key instead. Django's schema
    editor, which remakes a table for some changes and its indexes as the model says, does not take that away:
    the check after every migrate puts it back (spatial_index.ensure_spatial_index)."""
    from lagesbild import spatial_index

    table, wanted = spatial_index.sqlite_indexes()[name]

    def columns() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT name FROM pragma_index_info('{name}') ORDER BY seqno")
            return [row[0] for row in cursor.fetchall()]

    assert columns() == wanted
    with connection.cursor() as cursor:  # as a remade table has it: the model's key columns only
        cursor.execute(f"DROP INDEX {name}")
        cursor.execute(f"CREATE INDEX {name} ON {table} ({', '.join(wanted[:2])})")
    spatial_index.ensure_spatial_index(connection)
    assert columns() == wanted


@pytest.mark.sqlite
def test_sqlites_time_index_is_made_again_when_it_is_missing(db: None) -> None:
    """The other wide indexes are left to the migrations that make them; the time index is there from the first
    migrations on, so the check after every migrate makes a missing one (one that a failed widening lost)."""
    from lagesbild import spatial_index

    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {spatial_index.TIME_INDEX}")
    spatial_index.ensure_spatial_index(connection)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name FROM pragma_index_info('{spatial_index.TIME_INDEX}') ORDER BY seqno")
        assert [row[0] for row in cursor.fetchall()] == spatial_index.TIME_INDEX_COLUMNS


@pytest.mark.sqlite
def test_every_index_with_included_columns_holds_them_in_its_key_on_sqlite(db: None) -> None:
    """SQLite leaves out INCLUDE (and the warning that says so is silenced): every such index of the models
    holds its key and included columns, in that order, in SQLite's database as migrated."""
    from django.apps import apps

    included = [(model, index) for model in apps.get_models() for index in model._meta.indexes if index.include]
    assert {index.name for _model, index in included} == {"deviation_restricted", "deviation_count_category"}
    with connection.cursor() as cursor:
        for model, index in included:
            cursor.execute(f"SELECT name FROM pragma_index_info('{index.name}') ORDER BY seqno")
            assert [row[0] for row in cursor.fetchall()] == [
                model._meta.get_field(field).column for field in [*index.fields, *index.include]]


@pytest.mark.postgresql
def test_postgresql_has_an_index_for_each_side_of_the_viewports_condition(db: None) -> None:
    """filter_bbox asks for points inside the box or shapes meeting it; each side has a partial index whose
    condition is the side's own, so the planner can combine them (a BitmapOr) instead of crossing the time
    index with the GiST index of every row."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'deviations_deviation'")
        indexes = dict(cursor.fetchall())
    assert indexes["deviation_points_in_time"].endswith(
        "btree (forum_id, observed_at, lon, lat) WHERE (shape IS NULL)")
    assert indexes["deviation_drawn_gist"].endswith("gist (geom) WHERE (shape IS NOT NULL)")
