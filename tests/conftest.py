"""Shared fixtures: a small forum world with organisations, members of every role, and a second forum."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone, translation
from hypothesis import settings as hypothesis_settings
from PIL import Image

from lagesbild.deviations import services
from lagesbild.deviations.models import Category, Deviation
from lagesbild.deviations.taxonomy import seed_default_taxonomy
from lagesbild.forums.models import Forum, Membership, Organisation, Role
from lagesbild.forums.services import add_member
from lagesbild.meetings import actions
from lagesbild.meetings import services as meetings
from lagesbild.places import services as places
from tests.basemaps import TileServer

# The same generated examples on every run, so that a red CI run can be repeated; `--hypothesis-seed=N` explores.
hypothesis_settings.register_profile("lagesbild", derandomize=True, database=None, deadline=None)
hypothesis_settings.load_profile("lagesbild")

AREA = {
    "type": "Polygon",
    "coordinates": [[[18.05, 59.22], [18.15, 59.22], [18.15, 59.27], [18.05, 59.27], [18.05, 59.22]]],
}
INSIDE = (18.09, 59.244)
PASSWORD = "correct horse battery"
MARKER = "HEMLIG-MARKÖR-7731"  # planted in restricted deviations; must never reach those who may not see them


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgresql` are left out of a run on SQLite (the PostgreSQL pass runs them), and those
    marked `sqlite` out of a run on PostgreSQL."""
    from django.conf import settings

    other = "postgresql" if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") else "sqlite"
    left_out = [item for item in items if item.get_closest_marker(other)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker(other)]


@pytest.fixture(scope="session", autouse=True)
def tile_server(tmp_path_factory: Any) -> Iterator[TileServer]:
    """Raster basemap tiles from a server on loopback, for the whole run: the basemap as users meet it (the
    default is OpenStreetMap's), with no internet needed and no test ever asking a real tile server. The same
    server is the geocoder of the map's address search."""
    from django.conf import settings

    saved = (settings.LAGESBILD_TILE_URL, settings.LAGESBILD_TILE_CACHE_DIR, settings.LAGESBILD_GEOCODER_URL,
             settings.LAGESBILD_GEOCODER_INTERVAL)
    with TileServer().running() as server:
        settings.LAGESBILD_TILE_URL = server.url
        settings.LAGESBILD_TILE_CACHE_DIR = str(tmp_path_factory.mktemp("tile-cache"))
        settings.LAGESBILD_GEOCODER_URL = server.nominatim  # address search, as Nominatim answers it
        settings.LAGESBILD_GEOCODER_INTERVAL = 0.0  # our own geocoder may be asked as often as the tests like
        yield server
    (settings.LAGESBILD_TILE_URL, settings.LAGESBILD_TILE_CACHE_DIR, settings.LAGESBILD_GEOCODER_URL,
     settings.LAGESBILD_GEOCODER_INTERVAL) = saved


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _swedish() -> Iterator[None]:
    """Start every test in the default language; a request in English must not leak into the next test."""
    translation.activate("sv")
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _empty_cache(db: None) -> None:
    """Sign-in rate limits live in the cache; one test's failed attempts must not lock out the next."""
    from django.core.cache import cache

    from lagesbild import data_version
    from lagesbild.interop import tiles

    cache.clear()
    # Kept tiles and lists are keyed by forum id and data version, which a rolled-back test database hands
    # out again.
    tiles.kept.clear()
    data_version.answers.clear()


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@dataclass
class World:
    forum: Forum
    other_forum: Forum
    district: Organisation
    police: Organisation
    housing: Organisation
    school: Organisation
    coordinator: Membership
    police_lead: Membership
    police_reporter: Membership
    housing_reporter: Membership
    viewer: Membership
    outsider: Membership  # a member of the other forum only

    def client(self, membership: Membership | None = None, **kwargs: Any) -> Client:
        client = Client(**kwargs)
        if membership is not None:
            client.force_login(membership.user)
        return client

    def report(self, membership: Membership, **overrides: Any) -> Deviation:
        data = services.DeviationInput(
            category=overrides.pop("category", "graffiti"),
            lon=overrides.pop("lon", INSIDE[0]),
            lat=overrides.pop("lat", INSIDE[1]),
            observed_at=overrides.pop("observed_at", timezone.now() - dt.timedelta(hours=1)),
            **overrides,
        )
        return services.report_deviation(membership, data)


@pytest.fixture
def world(db: None) -> World:
    return make_world()


def make_world() -> World:
    seed_default_taxonomy(Category)  # a flushed database (after a browser test) has lost the migration's rows
    # Two-factor sign-in has tests of its own (test_sign_in.py); here a forced login is enough.
    forum = Forum.objects.create(slug="farsta", name="Farsta", area=AREA, require_two_factor=False)
    other = Forum.objects.create(slug="skarholmen", name="Skärholmen", area=None, require_two_factor=False)
    district = Organisation.objects.create(forum=forum, name="Stadsdelsförvaltningen", kind="district")
    police = Organisation.objects.create(forum=forum, name="Polisen", kind="police")
    housing = Organisation.objects.create(forum=forum, name="Bostadsbolaget", kind="housing")
    school = Organisation.objects.create(forum=forum, name="Skolan", kind="school")
    other_org = Organisation.objects.create(forum=other, name="Polisen Skärholmen", kind="police")

    def member(forum: Forum, email: str, org: Organisation, role: str) -> Membership:
        return add_member(forum, email=email, organisation=org, role=role, password=PASSWORD, first_name=email[:3])

    return World(
        forum=forum,
        other_forum=other,
        district=district,
        police=police,
        housing=housing,
        school=school,
        coordinator=member(forum, "samordnare@test.se", district, Role.COORDINATOR),
        police_lead=member(forum, "polislead@test.se", police, Role.ORG_LEAD),
        police_reporter=member(forum, "polis@test.se", police, Role.REPORTER),
        housing_reporter=member(forum, "vicevard@test.se", housing, Role.REPORTER),
        viewer=member(forum, "lasare@test.se", school, Role.VIEWER),
        outsider=member(other, "annan@test.se", other_org, Role.COORDINATOR),
    )


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), exif_gps: bool = False) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    buffer = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if exif_gps:
        exif = Image.Exif()
        exif[0x010F] = "SecretCam"  # Make
        exif[0x8825] = {1: "N", 2: (59.0, 14.0, 0.0), 3: "E", 4: (18.0, 5.0, 0.0)}  # GPSInfo
        kwargs["exif"] = exif
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def make_image() -> Callable[..., bytes]:
    return image_bytes



@pytest.fixture
def objects(world: World) -> dict[str, Any]:
    return make_objects(world)


def make_objects(world: World) -> dict[str, Any]:
    """A restricted deviation of the police's (with a comment and a photo, and the marker in its text), a public
    one, a place, a published meeting, an upcoming one with its agenda, and the police's action about both."""
    restricted = world.report(world.police_reporter, visibility="organisation",
                              description=f"{MARKER} i trapphuset", place_name=f"Port {MARKER}")
    services.add_comment(world.police_lead, restricted.pk, f"Kommentar {MARKER}")
    [photo] = services.add_photos(world.police_reporter, restricted.pk,
                                  [SimpleUploadedFile("secret.jpg", image_bytes())])
    public = world.report(world.police_reporter, description="Klotter vid torget")
    place = places.create_place(world.coordinator, places.PlaceInput(name="Torget", lon=18.09, lat=59.244,
                                                                     radius_m=100))
    now = timezone.now()
    published = meetings.schedule_meeting(world.coordinator, meetings.MeetingInput(
        held_at=now - dt.timedelta(days=30), period_start=now - dt.timedelta(days=60)))
    meetings.build_agenda(world.coordinator, published.pk)
    meetings.publish_protocol(world.coordinator, published.pk)
    meetings.flag_for_meeting(world.police_reporter, "Trapphuset", deviation_id=restricted.pk)
    meeting = meetings.schedule_meeting(world.coordinator, meetings.MeetingInput(held_at=now + dt.timedelta(days=7)))
    items = [i.pk for i in meetings.build_agenda(world.coordinator, meeting.pk)]
    action = actions.create_action(world.police_lead, actions.ActionInput(
        title="Kameror i trapphuset", organisation_id=world.police.pk, due_date=now.date() + dt.timedelta(days=20),
        deviation_ids=[restricted.pk, public.pk], place_id=place.pk))
    versions = dict(Deviation.objects.filter(pk__in=[restricted.pk, public.pk]).values_list("pk", "version"))
    return {"restricted": restricted.pk, "restricted_photo": photo.pk, "public": public.pk, "versions": versions,
            "housing_member": world.housing_reporter.pk, "place": place.pk, "meeting": meeting.pk, "items": items,
            "published": published.pk, "action": action.pk, "police": world.police.pk, "district": world.district.pk,
            "due": (now.date() + dt.timedelta(days=10)).isoformat()}


def with_postgres_script() -> Any:
    """scripts/with_postgres.py as a module (it is a script, not part of the package): its settings and helpers."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "with_postgres.py"
    spec = importlib.util.spec_from_file_location("with_postgres", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
