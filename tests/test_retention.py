"""Retention: expired deviations lose what could describe a person, or go altogether."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import services
from lagesbild.deviations.models import Comment, Deviation, Photo
from lagesbild.deviations.retention import apply_retention, months_before
from tests.conftest import World, image_bytes

pytestmark = pytest.mark.django_db(transaction=True)  # photo files are removed when the transaction commits


def test_months_before_handles_short_months() -> None:
    at = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)
    assert months_before(at, 1) == dt.datetime(2026, 2, 28, 12, 0, tzinfo=dt.UTC)
    assert months_before(at, 24) == dt.datetime(2024, 3, 31, 12, 0, tzinfo=dt.UTC)
    assert months_before(dt.datetime(2026, 1, 15, tzinfo=dt.UTC), 1) == dt.datetime(2025, 12, 15, tzinfo=dt.UTC)


def old_and_new(world: World) -> tuple[Deviation, Deviation]:
    old = world.report(world.police_reporter, observed_at=timezone.now() - dt.timedelta(days=800),
                       description="Man i röd jacka", place_name="Porten på Ågatan 3")
    services.add_comment(world.housing_reporter, old.pk, "Vi såg honom också")
    services.add_photos(world.police_reporter, old.pk, [SimpleUploadedFile("a.jpg", image_bytes())])
    new = world.report(world.police_reporter, observed_at=timezone.now() - dt.timedelta(days=30),
                       description="Klotter")
    return old, new


def media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_anonymise_keeps_the_statistics_and_removes_the_rest(world: World) -> None:
    world.forum.retention_months = 24
    world.forum.save()
    old, new = old_and_new(world)
    assert len(media_files()) == 2
    result = apply_retention(world.forum)
    assert result is not None
    assert (result.deviations, result.photos, result.comments) == (1, 1, 1)
    old.refresh_from_db()
    assert (old.description, old.place_name, old.search_text, old.reporter) == ("", "", "", None)
    assert old.anonymised_at is not None
    assert (old.category.key, old.status, old.organisation_id) == ("graffiti", "new", world.police.pk)
    assert not Photo.objects.filter(deviation=old).exists()
    assert not Comment.objects.filter(deviation=old).exists()
    assert media_files() == []
    # The log keeps that it happened, not what it said.
    create = AuditEvent.objects.get(object_id=old.pk, action="create")
    assert create.changes["description"] == "[borttaget]"
    assert create.changes["place_name"] == "[borttaget]"
    assert AuditEvent.objects.filter(action="retention", forum=world.forum).count() == 1
    new.refresh_from_db()
    assert new.description == "Klotter"
    # Running it again finds nothing more to do.
    assert apply_retention(world.forum).deviations == 0  # type: ignore[union-attr]


def test_delete_removes_expired_deviations(world: World) -> None:
    world.forum.retention_months = 12
    world.forum.retention_action = "delete"
    world.forum.save()
    _old, new = old_and_new(world)
    apply_retention(world.forum)
    assert list(Deviation.objects.values_list("pk", flat=True)) == [new.pk]
    assert media_files() == []


def test_dry_run_and_forums_without_retention_change_nothing(world: World) -> None:
    old, _new = old_and_new(world)
    assert apply_retention(world.forum) is None  # no retention set
    world.forum.retention_months = 24
    world.forum.save()
    out = io.StringIO()
    call_command("retention", "--dry-run", stdout=out)
    assert "farsta: would anonymise 1 deviations" in out.getvalue()
    assert "skarholmen: keeps deviations without limit." in out.getvalue()
    old.refresh_from_db()
    assert old.description == "Man i röd jacka"
    assert len(media_files()) == 2
    call_command("retention", "--forum", "farsta", stdout=out)
    old.refresh_from_db()
    assert old.description == ""


def test_the_orphan_sweep_spares_files_younger_than_an_hour_and_those_with_a_row(world: World) -> None:
    """A file no row names is a report that died before it committed, unless it is younger than the grace
    (a report being written now has saved its files and not yet committed)."""
    from lagesbild.deviations.retention import remove_orphan_photos

    upload = SimpleUploadedFile("foto.jpg", image_bytes(), content_type="image/jpeg")
    services.add_photos(world.housing_reporter, world.report(world.housing_reporter).pk, [upload])
    kept = sorted(media_files())
    assert len(kept) == 2  # the photo and its thumbnail
    folder = kept[0].parent
    fresh, stale, barely = folder / "fresh.jpg", folder / "stale.jpg", folder / "barely.jpg"
    for path in (fresh, stale, barely):
        path.write_bytes(b"left behind")
    hour = dt.timedelta(hours=1).total_seconds()
    now = timezone.now().timestamp()
    for path, age in ((stale, hour + 60), (barely, hour - 60)):
        os.utime(path, (now - age, now - age))
    for old in kept:  # the row's own files are old too: a row keeps them whatever their age
        os.utime(old, (now - 2 * hour, now - 2 * hour))
    assert remove_orphan_photos() == 1
    assert sorted(media_files()) == sorted([*kept, fresh, barely])


@pytest.mark.sqlite  # PostgreSQL's autovacuum gathers its statistics itself
def test_the_nightly_run_gathers_sqlites_planner_statistics(world: World) -> None:
    """SQLite keeps no statistics by itself; without them its planner took the wrong index (spatial_index)."""
    from django.db import connection

    old_and_new(world)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # sqlite_stat1 exists from here on
        cursor.execute("DELETE FROM sqlite_stat1")
    call_command("retention", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'deviation_forum_observed'")
        row = cursor.fetchone()
    assert row is not None and int(row[0].split()[0]) == Deviation.objects.count() > 0


@pytest.mark.sqlite
def test_a_busy_database_is_said_plainly_without_a_traceback(world: World) -> None:
    """Another process holding SQLite's write lock past the busy timeout: the nightly run says so and stops."""
    import sqlite3

    from django.core.management.base import CommandError
    from django.db import connection

    old_and_new(world)
    other = sqlite3.connect(connection.settings_dict["NAME"])
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(CommandError, match="The database is busy"):
            call_command("retention", stdout=io.StringIO())
    finally:
        other.rollback()
        other.close()
