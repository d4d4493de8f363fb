"""Safe by default: no built-in secret key, a clean `check --deploy`, no copies of forum data in caches, an
admin that shows operators nothing restricted, and local time that follows the forum's zone."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from lagesbild.analysis import services as analysis
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.forums.models import User
from lagesbild.forums.services import update_settings
from tests.conftest import World

ROOT = Path(__file__).resolve().parent.parent


def run_django(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """A management command in a new process, with only these LAGESBILD_ settings in its environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LAGESBILD_", "DJANGO_"))}
    clean.update(DJANGO_SETTINGS_MODULE="lagesbild.settings", LAGESBILD_PROJECT_DIR=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "django", *args], capture_output=True, text=True, env=clean,
                          cwd=ROOT, timeout=120, check=False)


@pytest.mark.pure
def test_without_a_secret_key_the_app_refuses_to_start(tmp_path: Path) -> None:
    refused = run_django(["check"], LAGESBILD_VAR_DIR=str(tmp_path))
    assert refused.returncode != 0
    assert "LAGESBILD_SECRET_KEY is not set" in refused.stderr and "secrets.token_urlsafe" in refused.stderr
    # On a developer's own machine, debug mode runs without one.
    assert run_django(["check"], LAGESBILD_VAR_DIR=str(tmp_path), LAGESBILD_DEBUG="true").returncode == 0


@pytest.mark.pure
def test_check_deploy_with_the_documented_production_settings(tmp_path: Path) -> None:
    """The settings docs/deployment.md tells an operator to set; what remains is explained there."""
    result = run_django(["check", "--deploy"], LAGESBILD_VAR_DIR=str(tmp_path), LAGESBILD_HTTPS="true",
                        LAGESBILD_SECRET_KEY="a-long-random-key-" + "x" * 50,
                        LAGESBILD_ALLOWED_HOSTS="lagesbild.example.se",
                        LAGESBILD_CSRF_TRUSTED_ORIGINS="https://lagesbild.example.se")
    warnings = sorted({word.strip("():") for word in result.stdout.split() + result.stderr.split()
                       if word.startswith("(security.")})
    assert warnings == ["security.W021"], result.stdout + result.stderr
    assert "security.W021" in (ROOT / "docs" / "deployment.md").read_text()


@pytest.mark.django_db
def test_nothing_that_carries_forum_data_is_kept_by_a_cache(world: World, objects: dict[str, Any]) -> None:
    client = world.client(world.police_lead)
    for url in ("/f/farsta/", "/f/farsta/platser/", "/api/forums/farsta/deviations",
                f"/api/forums/farsta/photos/{objects['restricted_photo']}",
                f"/f/farsta/moten/{objects['published']}/protokoll.pdf", "/f/farsta/monster/hexagons.csv"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"] == "private, no-store", url
    assert "no-store" not in client.get("/static/lagesbild/app.css").get("Cache-Control", "")


@pytest.mark.django_db
def test_the_operators_admin_shows_no_restricted_deviation(world: World, objects: dict[str, Any]) -> None:
    operator = User.objects.create_superuser("drift@test.se", "a long operator password")
    client = world.client()
    client.force_login(operator)
    listing = client.get("/drift/deviations/deviation/").content.decode()
    assert f"/drift/deviations/deviation/{objects['public']}/change/" in listing
    assert f"/drift/deviations/deviation/{objects['restricted']}/change/" not in listing
    opened = client.get(f"/drift/deviations/deviation/{objects['restricted']}/change/")
    assert opened.status_code == 302 and "HEMLIG" not in opened.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_new_time_zone_recounts_every_weekday_and_hour_in_the_background(world: World) -> None:
    # Tuesday 1 December 2026 at 04:30 UTC: 05:30 in Stockholm, 23:30 on Monday in New York.
    when = dt.datetime(2026, 12, 1, 4, 30, tzinfo=dt.UTC)
    with __import__("time_machine").travel(when + dt.timedelta(hours=2)):
        deviation = world.report(world.police_reporter, observed_at=when)
    assert (deviation.local_weekday, deviation.local_hour) == (1, 5)
    update_settings(world.coordinator, {"timezone": "America/New_York"})
    call_command("db_worker", "--batch")
    deviation.refresh_from_db()
    assert (deviation.local_weekday, deviation.local_hour, deviation.local_month) == (0, 23, 202611)
    grid = analysis.week_hour_grid(deviations.visible_deviations(world.coordinator))
    assert grid[0][23] == 1


@pytest.mark.django_db
def test_a_deviation_exactly_twelve_weeks_old_is_not_a_thirteenth_week(world: World) -> None:
    now = timezone.now()
    for weeks in (0, 1, 2, 3, 12):
        world.report(world.police_reporter, observed_at=now - dt.timedelta(weeks=weeks))
    Deviation.objects.filter(observed_at__lt=now - dt.timedelta(weeks=11, days=6)).update(
        observed_at=now - dt.timedelta(weeks=12))
    found = analysis.repeat_places(world.coordinator, deviations.visible_deviations(world.coordinator),
                                   weeks=12, min_weeks=2, now=now)
    assert [(r.weeks, r.of_weeks, r.count) for r in found] == [(4, 12, 4)]


@pytest.mark.django_db
def test_the_map_shows_times_in_the_forums_time_zone(world: World) -> None:
    world.forum.timezone = "Europe/Helsinki"
    world.forum.save()
    page = world.client(world.coordinator).get("/f/farsta/").content.decode()
    assert '"timeZone": "Europe/Helsinki"' in page
    script = (ROOT / "src" / "lagesbild" / "static" / "lagesbild" / "map.js").read_text()
    assert "Europe/Stockholm" not in script and "config.timeZone" in script
