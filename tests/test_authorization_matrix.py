"""Who may do what, for every API endpoint and page, generated from one table.

Each row is an endpoint (or page) with the answer each kind of visitor must get. Every response to a
visitor who may not see the restricted deviation is searched for the marker planted in it. A route that
the OpenAPI document (or the URL configuration) has and the table does not fails the test, so a new
endpoint cannot arrive without its row.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import mapbox_vector_tile
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client, TestCase, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from pypdf import PdfReader

from lagesbild.deviations.models import Deviation
from lagesbild.interop import imports
from lagesbild.live.models import LiveEvent
from tests.conftest import MARKER, World, image_bytes, make_objects, make_world
from tests.sse import close, deviation_ids, read_until

pytestmark = pytest.mark.django_db

ACTORS = ["anonymous", "other_forum", "viewer", "other_org", "author", "org_lead", "coordinator"]
# Those who may see the restricted deviation: its author's organisation.
SEES_RESTRICTED = {"author", "org_lead"}


@dataclass
class Row:
    method: str
    route: str  # the route as the OpenAPI document or the URL name spells it
    url: Callable[[dict[str, Any]], str]
    expected: dict[str, int]
    body: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    multipart: bool = False
    label: str = ""
    query: dict[str, str] = field(default_factory=dict)


def answers(anonymous: int = 401, other_forum: int = 404, **others: int) -> dict[str, int]:
    """Default: members get 200; anonymous 401; members of another forum 404."""
    base = {"anonymous": anonymous, "other_forum": other_forum}
    return {actor: others.get(actor, base.get(actor, 200)) for actor in ACTORS}


def restricted_only(ok: int, anonymous: int = 401) -> dict[str, int]:
    """Only the restricted deviation's organisation gets `ok`; for everyone else it does not exist."""
    return {actor: ok if actor in SEES_RESTRICTED else (anonymous if actor == "anonymous" else 404)
            for actor in ACTORS}


F = "/api/forums/farsta"
O311 = "/api/forums/farsta/open311/v2"
NEW = {"category": "graffiti", "lon": 18.09, "lat": 59.244}


def coordinators_only(ok: int) -> dict[str, int]:
    return answers(viewer=403, other_org=403, author=403, org_lead=403, coordinator=ok)


PLACE = {"name": "Ny plats", "lon": 18.09, "lat": 59.244, "radius_m": 50}

API_ROWS = [
    Row("GET", "/api/forums", lambda o: "/api/forums", answers(other_forum=200)),
    Row("GET", "/api/forums/{forum}", lambda o: F, answers()),
    Row("GET", "/api/forums/{forum}/organisations", lambda o: f"{F}/organisations", answers()),
    Row("GET", "/api/forums/{forum}/categories", lambda o: f"{F}/categories", answers()),
    Row("GET", "/api/forums/{forum}/deviations", lambda o: f"{F}/deviations", answers()),
    Row("GET", "/api/forums/{forum}/deviations", lambda o: f"{F}/deviations", answers(), label="search",
        query={"q": MARKER.lower()}),
    Row("POST", "/api/forums/{forum}/deviations", lambda o: f"{F}/deviations",
        answers(viewer=403, other_org=201, author=201, org_lead=201, coordinator=201), body=lambda o: NEW),
    Row("GET", "/api/forums/{forum}/deviations/aggregates", lambda o: f"{F}/deviations/aggregates", answers(),
        query={"bbox": "18.0,59.2,18.2,59.3"}),
    Row("POST", "/api/forums/{forum}/personal-data-check", lambda o: f"{F}/personal-data-check", answers(),
        body=lambda o: {"fields": {"description": "070-123 45 67"}}),
    # The restricted deviation
    Row("GET", "/api/forums/{forum}/deviations/{deviation_id}", lambda o: f"{F}/deviations/{o['restricted']}",
        restricted_only(200)),
    Row("PATCH", "/api/forums/{forum}/deviations/{deviation_id}", lambda o: f"{F}/deviations/{o['restricted']}",
        {**restricted_only(200), "author": 403},
        body=lambda o: {"version": o["versions"][o["restricted"]], "status": "reviewed"},
        label="status"),
    Row("PATCH", "/api/forums/{forum}/deviations/{deviation_id}", lambda o: f"{F}/deviations/{o['restricted']}",
        restricted_only(200), body=lambda o: {"version": o["versions"][o["restricted"]], "description": "Ny text"},
        label="text"),
    Row("DELETE", "/api/forums/{forum}/deviations/{deviation_id}", lambda o: f"{F}/deviations/{o['restricted']}",
        restricted_only(204)),
    Row("GET", "/api/forums/{forum}/deviations/{deviation_id}/comments",
        lambda o: f"{F}/deviations/{o['restricted']}/comments", restricted_only(200)),
    Row("POST", "/api/forums/{forum}/deviations/{deviation_id}/comments",
        lambda o: f"{F}/deviations/{o['restricted']}/comments", restricted_only(201), body=lambda o: {"body": "Hej"}),
    Row("GET", "/api/forums/{forum}/deviations/{deviation_id}/history",
        lambda o: f"{F}/deviations/{o['restricted']}/history", restricted_only(200)),
    # "To report to the police": anyone who reports may mark what they see; the reference is recorded by the
    # deviation's organisation (the police here), the police and coordinators.
    Row("POST", "/api/forums/{forum}/deviations/{deviation_id}/police",
        lambda o: f"{F}/deviations/{o['restricted']}/police", restricted_only(200), body=lambda o: {"flagged": True}),
    Row("POST", "/api/forums/{forum}/deviations/{deviation_id}/police",
        lambda o: f"{F}/deviations/{o['public']}/police", answers(viewer=403),
        body=lambda o: {"flagged": True}, label="public mark"),
    Row("POST", "/api/forums/{forum}/deviations/{deviation_id}/police",
        lambda o: f"{F}/deviations/{o['public']}/police", answers(viewer=403, other_org=403),
        body=lambda o: {"reportReference": "5000-K123456-26"}, label="public report"),
    Row("POST", "/api/forums/{forum}/deviations/{deviation_id}/photos",
        lambda o: f"{F}/deviations/{o['restricted']}/photos", restricted_only(201),
        body=lambda o: {"photos": [SimpleUploadedFile("a.jpg", image_bytes())]}, multipart=True),
    Row("GET", "/api/forums/{forum}/photos/{photo_id}", lambda o: f"{F}/photos/{o['restricted_photo']}",
        restricted_only(200)),
    Row("GET", "/api/forums/{forum}/photos/{photo_id}/thumbnail",
        lambda o: f"{F}/photos/{o['restricted_photo']}/thumbnail", restricted_only(200)),
    # A deviation the whole forum sees, reported by the author
    Row("GET", "/api/forums/{forum}/deviations/{deviation_id}", lambda o: f"{F}/deviations/{o['public']}",
        answers(), label="public"),
    Row("PATCH", "/api/forums/{forum}/deviations/{deviation_id}", lambda o: f"{F}/deviations/{o['public']}",
        answers(viewer=403, other_org=403, coordinator=403),
        body=lambda o: {"version": o["versions"][o["public"]], "description": "x"},
        label="public text"),
    Row("PATCH", "/api/forums/{forum}/deviations/{deviation_id}", lambda o: f"{F}/deviations/{o['public']}",
        answers(viewer=403, other_org=403, author=403),
        body=lambda o: {"version": o["versions"][o["public"]], "status": "resolved"},
        label="public status"),
    Row("DELETE", "/api/forums/{forum}/deviations/{deviation_id}", lambda o: f"{F}/deviations/{o['public']}",
        answers(viewer=403, other_org=403, coordinator=403, author=204, org_lead=204), label="public"),
    Row("POST", "/api/forums/{forum}/deviations/{deviation_id}/comments",
        lambda o: f"{F}/deviations/{o['public']}/comments",
        answers(viewer=403, other_org=201, author=201, org_lead=201, coordinator=201),
        body=lambda o: {"body": "Hej"}, label="public"),
    Row("GET", "/api/forums/{forum}/deviations/{deviation_id}/comments",
        lambda o: f"{F}/deviations/{o['public']}/comments", answers(), label="public"),
    Row("GET", "/api/forums/{forum}/deviations/{deviation_id}/history",
        lambda o: f"{F}/deviations/{o['public']}/history", answers(), label="public"),
    Row("POST", "/api/forums/{forum}/deviations/{deviation_id}/photos",
        lambda o: f"{F}/deviations/{o['public']}/photos",
        answers(viewer=403, other_org=403, coordinator=403, author=201, org_lead=201),
        body=lambda o: {"photos": [SimpleUploadedFile("a.jpg", image_bytes())]}, multipart=True, label="public"),
    # Places
    Row("GET", "/api/forums/{forum}/places", lambda o: f"{F}/places", answers()),
    Row("POST", "/api/forums/{forum}/places", lambda o: f"{F}/places", coordinators_only(201), body=lambda o: PLACE),
    Row("GET", "/api/forums/{forum}/places/suggestions", lambda o: f"{F}/places/suggestions", answers(),
        query={"min_count": "2", "min_weeks": "1"}),
    Row("GET", "/api/forums/{forum}/places/{place_id}", lambda o: f"{F}/places/{o['place']}", answers()),
    # Exports: every format, each holding the restricted deviation for its organisation only.
    *[Row("GET", "/api/forums/{forum}/export", lambda o: f"{F}/export", answers(), label=f"export {fmt}",
          query={"format": fmt}) for fmt in ("csv", "xlsx", "geojson", "gpkg")],
    # Passing on to a fault-report system: none is set up here, so members get 404 for the system, and the
    # restricted deviation is not found at all by those who may not see it (test_handoff.py has the rest).
    Row("POST", "/api/forums/{forum}/deviations/{deviation_id}/hand-off",
        lambda o: f"{F}/deviations/{o['restricted']}/hand-off", restricted_only(404), body=lambda o: {"system": 1}),
    # Vector tiles: points at zoom 15, hexagons with counts at zoom 10, around the deviations' position.
    Row("GET", "/api/forums/{forum}/tiles/WebMercatorQuad/{z}/{x}/{y}",
        lambda o: f"{F}/tiles/WebMercatorQuad/15/18030/9651", answers(), label="tile points"),
    Row("GET", "/api/forums/{forum}/tiles/WebMercatorQuad/{z}/{x}/{y}",
        lambda o: f"{F}/tiles/WebMercatorQuad/10/563/301", answers(), label="tile cells"),
    # OGC API Features: the same gate; the restricted deviation is an item for its organisation only.
    Row("GET", "/api/forums/{forum}/ogc", lambda o: f"{F}/ogc", answers()),
    Row("GET", "/api/forums/{forum}/ogc/api", lambda o: f"{F}/ogc/api", answers()),
    Row("GET", "/api/forums/{forum}/ogc/conformance", lambda o: f"{F}/ogc/conformance", answers()),
    Row("GET", "/api/forums/{forum}/ogc/collections", lambda o: f"{F}/ogc/collections", answers()),
    Row("GET", "/api/forums/{forum}/ogc/collections/{collection}", lambda o: f"{F}/ogc/collections/deviations",
        answers()),
    Row("GET", "/api/forums/{forum}/ogc/collections/{collection}/queryables",
        lambda o: f"{F}/ogc/collections/deviations/queryables", answers()),
    Row("GET", "/api/forums/{forum}/ogc/collections/{collection}/items",
        lambda o: f"{F}/ogc/collections/deviations/items", answers(), label="ogc items"),
    Row("GET", "/api/forums/{forum}/ogc/collections/{collection}/items",
        lambda o: f"{F}/ogc/collections/deviations/items", answers(), label="ogc filter",
        query={"filter": f"placeName LIKE '%{MARKER}%'"}),
    Row("GET", "/api/forums/{forum}/ogc/collections/{collection}/items/{feature}",
        lambda o: f"{F}/ogc/collections/deviations/items/{o['restricted']}", restricted_only(200)),
    Row("GET", "/api/forums/{forum}/ogc/collections/{collection}/items/{feature}",
        lambda o: f"{F}/ogc/collections/places/items/{o['place']}", answers(), label="ogc place"),
    # The restricted deviation's place name is "Port HEMLIG-MARKÖR-7731"; the search is typed in lower case.
    Row("GET", "/api/forums/{forum}/search", lambda o: f"{F}/search", answers(), label="place names",
        query={"q": MARKER.split("-", 1)[1].lower(), "addresses": "true"}),
    Row("PATCH", "/api/forums/{forum}/places/{place_id}", lambda o: f"{F}/places/{o['place']}",
        coordinators_only(200), body=lambda o: {**PLACE, "name": "Torget 2"}),
    Row("DELETE", "/api/forums/{forum}/places/{place_id}", lambda o: f"{F}/places/{o['place']}",
        coordinators_only(204)),
    # Saved views and alerts: each member's own; every member has a planted alert on the restricted deviation.
    Row("GET", "/api/forums/{forum}/saved-views", lambda o: f"{F}/saved-views", answers()),
    Row("POST", "/api/forums/{forum}/saved-views", lambda o: f"{F}/saved-views", answers(
        viewer=201, other_org=201, author=201, org_lead=201, coordinator=201),
        body=lambda o: {"name": "Ny vy", "query": "period=30&category=graffiti", "frequency": "daily"}),
    Row("PATCH", "/api/forums/{forum}/saved-views/{view_id}", lambda o: f"{F}/saved-views/{o['saved_view']}",
        answers(viewer=404, other_org=404, org_lead=404, coordinator=404),
        body=lambda o: {"frequency": "daily", "email": True}),
    Row("DELETE", "/api/forums/{forum}/saved-views/{view_id}", lambda o: f"{F}/saved-views/{o['saved_view']}",
        answers(viewer=404, other_org=404, author=204, org_lead=404, coordinator=404)),
    Row("GET", "/api/forums/{forum}/alerts", lambda o: f"{F}/alerts", answers()),
    Row("GET", "/api/forums/{forum}/patterns/fields", lambda o: f"{F}/patterns/fields?period=all", answers(),
        label="field counts"),
    # Rounds: each member's own (the author's holds both deviations, and its name the marker).
    Row("GET", "/api/forums/{forum}/rounds", lambda o: f"{F}/rounds", answers(), label="rounds"),
    Row("PUT", "/api/forums/{forum}/rounds/{key}", lambda o: f"{F}/rounds/kvallsrunda-1", answers(
        viewer=403, other_org=201, org_lead=201, coordinator=201),
        body=lambda o: {"name": "Kvällsrundan", "startedAt": "2026-01-10T18:00:00+01:00"}),
    # A round gathers its member's reports: only they may filter by it (the others are told there is no such round).
    Row("GET", "/api/forums/{forum}/deviations", lambda o: f"{F}/deviations?round={o['round']}", answers(
        viewer=422, other_org=422, org_lead=422, coordinator=422), label="round filter"),
    # The forum's own field, with the marker as the restricted deviation's value: a filter on it finds it only
    # for those who may see it.
    Row("GET", "/api/forums/{forum}/deviations", lambda o: f"{F}/deviations?field=farg:{MARKER}", answers(),
        label="field filter"),
    Row("POST", "/api/forums/{forum}/alerts/read", lambda o: f"{F}/alerts/read", answers(
        viewer=204, other_org=204, author=204, org_lead=204, coordinator=204), body=lambda o: {}),
    # Meetings, their agenda and protocol
    Row("GET", "/api/forums/{forum}/meetings", lambda o: f"{F}/meetings", answers()),
    Row("POST", "/api/forums/{forum}/meetings", lambda o: f"{F}/meetings", coordinators_only(201), body=lambda o: {}),
    Row("GET", "/api/forums/{forum}/meetings/{meeting_id}", lambda o: f"{F}/meetings/{o['meeting']}", answers()),
    Row("PATCH", "/api/forums/{forum}/meetings/{meeting_id}", lambda o: f"{F}/meetings/{o['meeting']}",
        coordinators_only(200), body=lambda o: {"title": "Nytt namn"}),
    Row("DELETE", "/api/forums/{forum}/meetings/{meeting_id}", lambda o: f"{F}/meetings/{o['meeting']}",
        coordinators_only(204)),
    Row("PUT", "/api/forums/{forum}/meetings/{meeting_id}/attendance",
        lambda o: f"{F}/meetings/{o['meeting']}/attendance", coordinators_only(200),
        body=lambda o: {"organisations": [], "people": []}),
    Row("POST", "/api/forums/{forum}/meetings/{meeting_id}/agenda", lambda o: f"{F}/meetings/{o['meeting']}/agenda",
        coordinators_only(200)),
    Row("POST", "/api/forums/{forum}/meetings/{meeting_id}/items", lambda o: f"{F}/meetings/{o['meeting']}/items",
        coordinators_only(201), body=lambda o: {"title": "Övrigt"}),
    Row("PUT", "/api/forums/{forum}/meetings/{meeting_id}/items/order",
        lambda o: f"{F}/meetings/{o['meeting']}/items/order", coordinators_only(200),
        body=lambda o: {"items": o["items"][::-1]}),
    Row("PATCH", "/api/forums/{forum}/meetings/{meeting_id}/items/{item_id}",
        lambda o: f"{F}/meetings/{o['meeting']}/items/{o['items'][0]}", coordinators_only(200),
        body=lambda o: {"notes": "Anteckning"}),
    Row("DELETE", "/api/forums/{forum}/meetings/{meeting_id}/items/{item_id}",
        lambda o: f"{F}/meetings/{o['meeting']}/items/{o['items'][0]}", coordinators_only(204)),
    Row("POST", "/api/forums/{forum}/meetings/{meeting_id}/protocols",
        lambda o: f"{F}/meetings/{o['meeting']}/protocols", coordinators_only(201), body=lambda o: {}),
    Row("POST", "/api/forums/{forum}/meetings/{meeting_id}/correction",
        lambda o: f"{F}/meetings/{o['published']}/correction", coordinators_only(200)),
    Row("GET", "/api/forums/{forum}/meetings/{meeting_id}/protocols/{version}",
        lambda o: f"{F}/meetings/{o['published']}/protocols/1", answers()),
    Row("GET", "/api/forums/{forum}/meetings/{meeting_id}/protocols/{version}/pdf",
        lambda o: f"{F}/meetings/{o['published']}/protocols/1/pdf", answers()),
    Row("POST", "/api/forums/{forum}/flags", lambda o: f"{F}/flags",
        answers(viewer=403, other_org=201, author=201, org_lead=201, coordinator=201),
        body=lambda o: {"text": "Ta upp detta"}),
    # Actions: the police's, linked to the restricted deviation and a public one
    Row("GET", "/api/forums/{forum}/actions", lambda o: f"{F}/actions", answers()),
    Row("POST", "/api/forums/{forum}/actions", lambda o: f"{F}/actions",
        answers(viewer=403, other_org=403, author=403, org_lead=201, coordinator=201),
        body=lambda o: {"title": "Fler patrullor", "organisation": o["police"], "due_date": o["due"]}),
    Row("GET", "/api/forums/{forum}/actions/{action_id}", lambda o: f"{F}/actions/{o['action']}", answers()),
    Row("PATCH", "/api/forums/{forum}/actions/{action_id}", lambda o: f"{F}/actions/{o['action']}",
        coordinators_only(200), body=lambda o: {"title": "Ny rubrik"}),
    Row("POST", "/api/forums/{forum}/actions/{action_id}/follow-ups",
        lambda o: f"{F}/actions/{o['action']}/follow-ups",
        answers(viewer=403, other_org=403, author=201, org_lead=201, coordinator=201),
        body=lambda o: {"body": "Pågår"}),
    Row("GET", "/api/forums/{forum}/actions/{action_id}/effect", lambda o: f"{F}/actions/{o['action']}/effect",
        answers()),
    # Patterns: every figure from what the asker may see
    *[Row("GET", f"/api/forums/{{forum}}/patterns/{figure}", lambda o, f=figure: f"{F}/patterns/{f}", answers())
      for figure in ("hexagons", "hotspots", "week-hours", "trend", "actors", "repeat-places", "compare")],
    # Safety walks: every member reads them; the arranging organisation (the police) and coordinators record the
    # track. The walked walk's findings became the restricted and the public deviation.
    Row("GET", "/api/forums/{forum}/walks", lambda o: f"{F}/walks", answers()),
    Row("GET", "/api/forums/{forum}/walks/{walk_id}", lambda o: f"{F}/walks/{o['walks']['walked']}", answers(),
        label="walk"),
    Row("POST", "/api/forums/{forum}/walks/{walk_id}/track", lambda o: f"{F}/walks/{o['walks']['walking']}/track",
        answers(viewer=403, other_org=403), body=lambda o: {"points": [[18.09, 59.244, o["walks"]["now"]]]}),
]

# Every operation a page's form can send (its `op`, button or address): who gets what. Refusals answer 403
# and change nothing; an operation done answers with a redirect (302).
def page_post(name: str, url: Callable[[dict[str, Any]], str], op: str, expected: dict[str, int],
              body: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Row:
    return Row("POST", name, url, {**expected, "anonymous": 302}, multipart=True, label=op,
               body=lambda o: {"op": op, **(body(o) if body else {})})


COORDINATOR_POST = coordinators_only(302)
REPORTERS_POST = answers(viewer=403, other_org=302, author=302, org_lead=302, coordinator=302)
FOLLOW_UP_POST = answers(viewer=403, other_org=403, author=302, org_lead=302, coordinator=302)
WALK_RUNNERS = FOLLOW_UP_POST  # the arranging organisation (the police) and coordinators
MEETING = lambda o: f"/f/farsta/moten/{o['meeting']}/"  # noqa: E731
PUBLISHED = lambda o: f"/f/farsta/moten/{o['published']}/"  # noqa: E731
PLACE_URL = lambda o: f"/f/farsta/platser/{o['place']}/"  # noqa: E731
ACTION_URL = lambda o: f"/f/farsta/atgarder/{o['action']}/"  # noqa: E731
DUE = lambda o: o["due"]  # noqa: E731
IMPORT_FILE = b"Datum;Kategori;Lon;Lat\r\n2026-10-01 12:00;Klotter;18,09;59,244\r\n"
IMPORT_URL = lambda o: f"/f/farsta/import/{o['import']}/"  # noqa: E731
# The police's import: its own organisation's leads only; the district's coordinator does not find it.
POLICE_IMPORT = answers(anonymous=302, viewer=403, other_org=403, author=403, org_lead=200, coordinator=404)
IMPORTERS = answers(anonymous=302, viewer=403, other_org=403, author=403)
SAVED_VIEWS = "/f/farsta/bevakningar/"
OWN_VIEW = answers(viewer=404, other_org=404, author=302, org_lead=404, coordinator=404)  # the author's view
PAGE_POSTS = [
    page_post("saved-views", lambda o: SAVED_VIEWS, "save", answers(viewer=302, other_org=302, author=302,
                                                                    org_lead=302, coordinator=302),
              lambda o: {"name": "Ny vy", "query": "period=30&category=graffiti", "frequency": "daily"}),
    page_post("saved-views", lambda o: SAVED_VIEWS, "alerts", OWN_VIEW,
              lambda o: {"view": o["saved_view"], "frequency": "daily", "email": "on"}),
    page_post("saved-views", lambda o: SAVED_VIEWS, "delete", OWN_VIEW, lambda o: {"view": o["saved_view"]}),
    page_post("saved-views", lambda o: SAVED_VIEWS, "read", answers(viewer=302, other_org=302, author=302,
                                                                    org_lead=302, coordinator=302)),
    page_post("imports", lambda o: "/f/farsta/import/", "upload", {**IMPORTERS, "org_lead": 302, "coordinator": 302},
              lambda o: {"file": SimpleUploadedFile("ny.csv", IMPORT_FILE.replace(b"12:00", b"13:00"))}),
    page_post("import", IMPORT_URL, "check", {**POLICE_IMPORT, "org_lead": 302},
              lambda o: {"column-0": "observed_at", "column-1": "category", "column-2": "x", "column-3": "y",
                         "visibility": "forum"}),
    page_post("import", IMPORT_URL, "import", {**POLICE_IMPORT, "org_lead": 422}),  # not checked yet
    page_post("import", IMPORT_URL, "undo", {**POLICE_IMPORT, "org_lead": 422}),  # not imported
    page_post("import", IMPORT_URL, "restart", {**POLICE_IMPORT, "org_lead": 422}),  # not running
    page_post("import", IMPORT_URL, "discard", {**POLICE_IMPORT, "org_lead": 302}),
    page_post("meetings", lambda o: "/f/farsta/moten/", "schedule", COORDINATOR_POST),
    page_post("meetings", lambda o: "/f/farsta/moten/", "flag", REPORTERS_POST,
              lambda o: {"text": "Ta upp trapphuset", "deviation": o["public"]}),
    page_post("meeting", MEETING, "build", COORDINATOR_POST),
    page_post("meeting", MEETING, "add_item", COORDINATOR_POST, lambda o: {"title": "Övrigt"}),
    page_post("meeting", MEETING, "save_item", COORDINATOR_POST, lambda o: {"item": o["items"][0], "notes": "N"}),
    page_post("meeting", MEETING, "up", COORDINATOR_POST, lambda o: {"item": o["items"][-1]}),
    page_post("meeting", MEETING, "down", COORDINATOR_POST, lambda o: {"item": o["items"][0]}),
    page_post("meeting", MEETING, "remove_item", COORDINATOR_POST, lambda o: {"item": o["items"][0]}),
    page_post("meeting", MEETING, "attendance", COORDINATOR_POST, lambda o: {"organisations": [o["police"]]}),
    page_post("meeting", MEETING, "details", COORDINATOR_POST, lambda o: {"title": "Forummöte", "location": "A"}),
    page_post("meeting", MEETING, "action", COORDINATOR_POST,
              lambda o: {"item": o["items"][0], "title": "Lampor", "organisation": o["district"], "due_date": DUE(o)}),
    page_post("meeting", MEETING, "follow_up", FOLLOW_UP_POST, lambda o: {"action": o["action"], "body": "Pågår"}),
    page_post("meeting", MEETING, "publish", COORDINATOR_POST),
    page_post("meeting", MEETING, "delete", COORDINATOR_POST),
    page_post("meeting", PUBLISHED, "correct", COORDINATOR_POST),
    page_post("meeting-screen", lambda o: f"/f/farsta/moten/{o['meeting']}/visning/?punkt=1", "notes",
              COORDINATOR_POST, lambda o: {"notes": "Anteckning", "decision": "Beslut"}),
    page_post("places", lambda o: "/f/farsta/platser/", "create", COORDINATOR_POST,
              lambda o: {"name": "Parkeringen", "lon": "18.1", "lat": "59.25", "radius_m": "80"}),
    page_post("place", PLACE_URL, "edit", COORDINATOR_POST, lambda o: {"name": "Torget 2", "radius_m": "90"}),
    page_post("place", PLACE_URL, "delete", COORDINATOR_POST),
    page_post("actions", lambda o: "/f/farsta/atgarder/", "create",
              answers(viewer=403, other_org=403, author=403, org_lead=302, coordinator=302),
              lambda o: {"title": "Fler patrullor", "organisation": o["police"], "due_date": DUE(o),
                         "deviations": [o["public"]]}),
    page_post("action", ACTION_URL, "edit", COORDINATOR_POST, lambda o: {"title": "Kameror", "due_date": DUE(o),
                                                                        "organisation": o["police"]}),
    page_post("action", ACTION_URL, "follow_up", FOLLOW_UP_POST, lambda o: {"body": "Pågår"}),
    page_post("categories", lambda o: "/f/farsta/kategorier/", "hide", COORDINATOR_POST,
              lambda o: {"hide": "graffiti"}),
    page_post("categories", lambda o: "/f/farsta/kategorier/", "show", COORDINATOR_POST,
              lambda o: {"show": "graffiti"}),
    page_post("categories", lambda o: "/f/farsta/kategorier/", "add", COORDINATOR_POST,
              lambda o: {"name_sv": "Buller", "name_en": "Noise", "color": "#336699"}),
    page_post("categories", lambda o: "/f/farsta/kategorier/", "field-add", COORDINATOR_POST,
              lambda o: {"category": "gathering", "label": "Antal personer", "kind": "number"}),
    page_post("categories", lambda o: "/f/farsta/kategorier/", "field-remove", COORDINATOR_POST,
              lambda o: {"field": o["field"]}),
    page_post("forum-settings", lambda o: "/f/farsta/installningar/", "save", COORDINATOR_POST,
              lambda o: {"name": "Farsta trygghetsforum", "timezone": "Europe/Stockholm"}),
    page_post("walks", lambda o: "/f/farsta/vandringar/", "plan", REPORTERS_POST,
              lambda o: {"title": "Kvällsvandring", "planned_at": "2026-12-24T18:00"}),
    *[page_post("walk", lambda o, w=walk: f"/f/farsta/vandringar/{o['walks'][w]}/", op, WALK_RUNNERS, body)
      for op, walk, body in (
          ("details", "planned", lambda o: {"title": "Ny rubrik", "planned_at": "2026-12-24T18:00"}),
          ("add_stop", "planned", lambda o: {"name": "Torget", "lon": "18.09", "lat": "59.244"}),
          ("remove_stop", "planned", lambda o: {"stop": o["walks"]["stops"][0]}),
          ("up", "planned", lambda o: {"stop": o["walks"]["stops"][1]}),
          ("down", "planned", lambda o: {"stop": o["walks"]["stops"][0]}),
          ("add_participant", "planned", lambda o: {"participant_name": "Boende Bo"}),
          ("remove_participant", "planned", lambda o: {"participant": o["walks"]["participant"]}),
          ("start", "planned", lambda o: {}),
          ("delete", "planned", lambda o: {}),
          ("end", "walking", lambda o: {}),
          ("checks", "walking", lambda o: {"stop": o["walks"]["walking_stop"], "lighting-assessment": "ok"}),
          ("record", "walked", lambda o: {}))],
    *[page_post("member-action", lambda o, a=action: f"/f/farsta/medlemmar/{a}/", action,
                answers(viewer=403, other_org=403, author=403, org_lead=lead, coordinator=302), body)
      for action, lead, body in (
          ("invite", 302, lambda o: {"email": "ny@test.se", "organisation": o["police"], "role": "reporter"}),
          ("role", 403, lambda o: {"membership": o["housing_member"], "role": "viewer"}),
          ("suspend", 403, lambda o: {"membership": o["housing_member"]}),
          ("reactivate", 403, lambda o: {"membership": o["housing_member"]}),
          ("remove", 403, lambda o: {"membership": o["housing_member"]}),
          ("organisation", 403, lambda o: {"name": "Räddningstjänsten", "kind": "other"}))],
]

# Pages, by URL name. The sign-in page and /healthz are open to all; one forum sends you to its map.
PAGE_ROWS = [
    Row("GET", "home", lambda o: "/", {**answers(anonymous=302, other_forum=302), **{
        a: 302 for a in ACTORS}}),
    Row("GET", "healthz", lambda o: "/healthz", {a: 200 for a in ACTORS}),
    Row("GET", "account_login", lambda o: "/konto/login/", {**{a: 302 for a in ACTORS}, "anonymous": 200}),
    Row("POST", "account_logout", lambda o: "/konto/logout/", {a: 302 for a in ACTORS}, body=lambda o: {},
        multipart=True),
    Row("GET", "map", lambda o: "/f/farsta/", answers(anonymous=302)),
    Row("GET", "web-manifest", lambda o: "/manifest.webmanifest", {a: 200 for a in ACTORS}),
    Row("GET", "service-worker", lambda o: "/sw.js", {a: 200 for a in ACTORS}),
    Row("GET", "accept-invitation", lambda o: "/konto/inbjudan/not-a-real-key/", {a: 404 for a in ACTORS}),
    Row("GET", "forum-settings", lambda o: "/f/farsta/installningar/",
        {**answers(anonymous=302), "viewer": 403, "other_org": 403, "author": 403, "org_lead": 403}),
    Row("GET", "categories", lambda o: "/f/farsta/kategorier/",
        {**answers(anonymous=302), "viewer": 403, "other_org": 403, "author": 403, "org_lead": 403}),
    Row("GET", "members", lambda o: "/f/farsta/medlemmar/",
        {**answers(anonymous=302), "viewer": 403, "other_org": 403, "author": 403}),
    Row("GET", "audit-log", lambda o: "/f/farsta/logg/",
        {**answers(anonymous=302), "viewer": 403, "other_org": 403, "author": 403, "org_lead": 403}),
    Row("GET", "audit-log-csv", lambda o: "/f/farsta/logg.csv",
        {**answers(anonymous=302), "viewer": 403, "other_org": 403, "author": 403, "org_lead": 403}),
    Row("GET", "imports", lambda o: "/f/farsta/import/", IMPORTERS),
    Row("GET", "saved-views", lambda o: SAVED_VIEWS, answers(anonymous=302)),
    # The live stream, from before the objects were made: each member is caught up on what they may see.
    Row("GET", "live", lambda o: f"/f/farsta/live?since={o['live_since']}", answers(), label="live"),
    Row("GET", "import", IMPORT_URL, POLICE_IMPORT),
    Row("GET", "import-progress", lambda o: f"/f/farsta/import/{o['import']}/status.json", POLICE_IMPORT),
    Row("GET", "import-problems", lambda o: f"/f/farsta/import/{o['import']}/problem.csv", POLICE_IMPORT),
    # Open311: members read in the browser; posting needs an API token (test_open311.py), so a session gets 401.
    Row("GET", "open311-root", lambda o: f"{O311}/", answers()),
    Row("GET", "open311-discovery", lambda o: f"{O311}/discovery.xml", answers()),
    Row("GET", "open311-services", lambda o: f"{O311}/services.json", answers()),
    Row("GET", "open311-service", lambda o: f"{O311}/services/graffiti.json", answers()),
    Row("GET", "open311-requests", lambda o: f"{O311}/requests.json", answers(), label="open311 requests"),
    Row("GET", "open311-request", lambda o: f"{O311}/requests/{o['restricted']}.xml", restricted_only(200)),
    Row("POST", "open311-requests", lambda o: f"{O311}/requests.json", {a: 401 for a in ACTORS},
        body=lambda o: {"service_code": "graffiti", "lat": "59.244", "long": "18.09"}, multipart=True),
    Row("GET", "patterns", lambda o: "/f/farsta/monster/?period=all", answers(anonymous=302)),
    Row("GET", "pattern-csv", lambda o: "/f/farsta/monster/overlap.csv?period=all", answers(anonymous=302)),
    Row("GET", "places", lambda o: "/f/farsta/platser/", answers(anonymous=302)),
    Row("GET", "place", lambda o: f"/f/farsta/platser/{o['place']}/", answers(anonymous=302)),
    Row("GET", "meetings", lambda o: "/f/farsta/moten/", answers(anonymous=302)),
    Row("GET", "meeting", lambda o: f"/f/farsta/moten/{o['meeting']}/", answers(anonymous=302)),
    Row("GET", "meeting-screen", lambda o: f"/f/farsta/moten/{o['meeting']}/visning/?punkt=2",
        answers(anonymous=302)),
    Row("GET", "meeting-screen-current", lambda o: f"/f/farsta/moten/{o['meeting']}/visning/aktuell.json",
        answers(anonymous=302)),
    Row("GET", "protocol", lambda o: f"/f/farsta/moten/{o['published']}/protokoll/", answers(anonymous=302)),
    Row("GET", "protocol-pdf", lambda o: f"/f/farsta/moten/{o['published']}/protokoll.pdf", answers(anonymous=302)),
    Row("GET", "walks", lambda o: "/f/farsta/vandringar/", answers(anonymous=302)),
    Row("GET", "walk", lambda o: f"/f/farsta/vandringar/{o['walks']['walked']}/", answers(anonymous=302),
        label="walk page"),
    Row("GET", "walk-protocol", lambda o: f"/f/farsta/vandringar/{o['walks']['walked']}/protokoll/",
        answers(anonymous=302), label="walk protocol"),
    Row("GET", "walk-protocol-pdf", lambda o: f"/f/farsta/vandringar/{o['walks']['walked']}/protokoll.pdf",
        answers(anonymous=302), label="walk pdf"),
    Row("GET", "actions", lambda o: "/f/farsta/atgarder/", answers(anonymous=302)),
    Row("GET", "action", lambda o: f"/f/farsta/atgarder/{o['action']}/", answers(anonymous=302)),
    # The basemap's glyphs and file hold nobody's data, but only the signed-in get them (no free tile server);
    # the matrix runs with raster tiles, so there is no PMTiles file to serve.
    Row("GET", "basemap-glyphs", lambda o: "/basemap/fonts/Noto%20Sans%20Regular/0-255.pbf",
        {**{a: 200 for a in ACTORS}, "anonymous": 401}),
    Row("GET", "basemap-pmtiles", lambda o: "/basemap/basemap.pmtiles", {**{a: 404 for a in ACTORS}, "anonymous": 401}),
    *PAGE_POSTS,
]
# Routes that are not the application's own pages.
NOT_PAGES = {"set_language", "api-root", "openapi-json"}

CASES = [(row, actor) for row in API_ROWS + PAGE_ROWS for actor in ACTORS]


@pytest.fixture(scope="module")
def shared(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[tuple[World, dict]]:
    """The world and its objects, made once for the module's 800 cases in a transaction rolled back at its end;
    each case runs in a savepoint of it and is rolled back in turn (as Django's TestCase.setUpTestData)."""
    media = tmp_path_factory.mktemp("media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media), transaction.atomic():
        world = make_world()
        # The police's upload, mapped but not yet checked: its pages are the police leads' alone.
        upload = imports.upload(world.police_lead, SimpleUploadedFile("gammal.csv", IMPORT_FILE))
        # With their live events written, as they are when the changes commit: the live stream's row asks for them.
        events_before = LiveEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        with TestCase.captureOnCommitCallbacks(execute=True):
            objects = make_objects(world)
        objects["live_since"] = events_before
        yield world, {**objects, "media": media, "import": upload.pk, **plant_alerts(world, objects),
                      "round": plant_round(world, objects), "field": plant_field(world, objects),
                      "walks": plant_walks(world, objects)}
        transaction.set_rollback(True)


def plant_field(world: World, objects: dict[str, Any]) -> int:
    """A field of the forum's own on graffiti, filled in on both deviations; the restricted one's value is the
    marker, which nobody who may not see it may meet, in a filter's count or anywhere."""
    from lagesbild.deviations.models import Category, CategoryField

    planted = CategoryField.objects.create(forum=world.forum, category=Category.objects.get(key="graffiti"),
                                           key="farg", label="Färg", kind="text")
    Deviation.objects.filter(pk=objects["restricted"]).update(fields={"farg": MARKER})
    Deviation.objects.filter(pk=objects["public"]).update(fields={"farg": "blå"})
    return planted.pk


def plant_walks(world: World, objects: dict[str, Any]) -> dict[str, Any]:
    """The police's walks: one planned (two stops, a participant), one under way, and one walked whose two
    findings became the restricted and the public deviation. Only the police may learn which finding became
    the restricted one."""
    from django.utils import timezone

    from lagesbild.walks import services as walks
    from lagesbild.walks.models import WalkCheck

    def plan(title: str) -> Any:
        return walks.plan_walk(world.police_reporter, walks.WalkInput(title=title, planned_at=timezone.now()))

    planned = plan("Planerad")
    stops = [walks.add_stop(world.police_reporter, planned.pk, name, 18.09, 59.244).pk for name in ("A", "B")]
    participant = walks.add_participant(world.police_reporter, planned.pk, "Boende Bo", "").pk
    walking = plan("Pågående")
    walking_stop = walks.add_stop(world.police_reporter, walking.pk, "C", 18.09, 59.244).pk
    walks.start_walk(world.police_reporter, walking.pk)
    walked = plan("Genomförd")
    stops_walked = [walks.add_stop(world.police_reporter, walked.pk, name, 18.09, 59.244) for name in ("Porten",
                                                                                                      "Torget")]
    walks.start_walk(world.police_reporter, walked.pk)
    walks.end_walk(world.police_reporter, walked.pk)
    for stop, aspect, deviation in ((stops_walked[0], "lighting", objects["restricted"]),
                                    (stops_walked[1], "signage", objects["public"])):
        WalkCheck.objects.create(forum=world.forum, stop=stop, aspect=aspect, assessment="problem", note="Mörkt",
                                 deviation_id=deviation, recorded_at=timezone.now())
    return {"planned": planned.pk, "stops": stops, "participant": participant, "walking": walking.pk,
            "walking_stop": walking_stop, "walked": walked.pk, "now": timezone.now().timestamp()}


def plant_round(world: World, objects: dict[str, Any]) -> int:
    """The police reporter's round, on which both deviations were reported."""
    from django.utils import timezone

    from lagesbild.deviations.models import Round

    planted = Round.objects.create(forum=world.forum, organisation=world.police, started_by=world.police_reporter.user,
                                   key="kvallsrunda-1", name=f"Runda {MARKER}", started_at=timezone.now())
    Deviation.objects.filter(pk__in=[objects["restricted"], objects["public"]]).update(round=planted)
    return planted.pk


def plant_alerts(world: World, objects: dict[str, Any]) -> dict[str, Any]:
    """Every member watches the whole forum, and each has an alert about the restricted deviation (as if it
    had once been visible to them): only its organisation may see it, in the list, the count or anywhere."""
    from lagesbild.alerts.models import Alert, SavedView

    views = {}
    for actor, member in (("viewer", world.viewer), ("other_org", world.housing_reporter),
                          ("author", world.police_reporter), ("org_lead", world.police_lead),
                          ("coordinator", world.coordinator)):
        view = SavedView.objects.create(forum=world.forum, membership=member, name="Allt", frequency="immediate")
        Alert.objects.create(forum=world.forum, saved_view=view, deviation_id=objects["restricted"])
        views[actor] = view.pk
    return {"saved_view": views["author"]}


@pytest.fixture(autouse=True)
def _media_root(settings: Any, shared: tuple[World, dict[str, Any]]) -> None:
    settings.MEDIA_ROOT = shared[1]["media"]  # where the shared objects' photo is


@pytest.fixture
def world(db: None, shared: tuple[World, dict[str, Any]]) -> World:
    return shared[0]


@pytest.fixture
def objects(db: None, shared: tuple[World, dict[str, Any]]) -> dict[str, Any]:
    return shared[1]


def client_for(world: World, actor: str) -> Client:
    membership = {
        "anonymous": None, "other_forum": world.outsider, "viewer": world.viewer,
        "other_org": world.housing_reporter, "author": world.police_reporter, "org_lead": world.police_lead,
        "coordinator": world.coordinator,
    }[actor]
    return world.client(membership)


@pytest.mark.parametrize(("row", "actor"), CASES,
                         ids=[f"{r.method} {r.route}{' ' + r.label if r.label else ''} as {a}" for r, a in CASES])
def test_matrix(world: World, objects: dict[str, Any], row: Row, actor: str) -> None:
    client = client_for(world, actor)
    url = row.url(objects)
    body = row.body(objects) if row.body else None
    if row.method == "GET":
        response = client.get(url, row.query)
    elif row.multipart:
        response = client.post(url, body)
    else:
        payload = json.dumps(body or {})
        response = getattr(client, row.method.lower())(url, payload, content_type="application/json")
    assert response.status_code == row.expected[actor], response.content[:300]
    if row.label == "live" and response.status_code == 200:
        with override_settings(LAGESBILD_LIVE_KEEPALIVE_SECONDS=0.05):  # caught up, it falls quiet
            content = read_until(iter(response.streaming_content), lambda got: False, quiet=True).encode()
        close(response)
        ids = deviation_ids(content.decode())
        assert objects["public"] in ids
        assert (objects["restricted"] in ids) == (actor in SEES_RESTRICTED)
    else:
        content = b"".join(response.streaming_content) if response.streaming else response.content
    if actor not in SEES_RESTRICTED:
        assert MARKER.encode() not in content
        assert MARKER.lower().encode() not in content
    if row.label == "search" and response.status_code == 200:
        assert response.json()["numberMatched"] == (1 if actor in SEES_RESTRICTED else 0)
    if row.label.startswith("export") and response.status_code == 200:
        # The files are compressed or binary: count the deviations in them instead of looking for the marker.
        assert int(response["X-Total-Count"]) == (2 if actor in SEES_RESTRICTED else 1)
        if row.label in ("export csv", "export geojson"):
            assert (MARKER.encode() in content) == (actor in SEES_RESTRICTED)
    if row.label == "place names" and response.status_code == 200:
        names = [r["label"] for r in response.json()["results"] if r["kind"] == "placeName"]
        assert names == ([f"Port {MARKER}"] if actor in SEES_RESTRICTED else [])
    if row.route == "/api/forums/{forum}/deviations" and row.method == "GET" and response.status_code == 200:
        ids = {f["id"] for f in response.json()["features"]}
        assert (objects["restricted"] in ids) == (actor in SEES_RESTRICTED)
    if row.label == "field counts" and response.status_code == 200:
        [colour] = response.json()
        assert colour["filled"] == (2 if actor in SEES_RESTRICTED else 1)
    if row.label in ("walk", "walk page", "walk protocol") and response.status_code == 200:
        # The findings' deviations: the public one named to all, the restricted one to the police only.
        if row.label == "walk":
            named = {c["deviation"] for s in response.json()["stopList"] for c in s["checks"]}
        else:
            named = {int(n) for n in re.findall(rb"#deviation-(\d+)", content)}
        assert objects["public"] in named
        assert (objects["restricted"] in named) == (actor in SEES_RESTRICTED)
    if row.label == "walk pdf" and response.status_code == 200:
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
        assert f"#{objects['public']} " in text
        assert (f"#{objects['restricted']} " in text) == (actor in SEES_RESTRICTED)
    if row.label == "rounds" and response.status_code == 200:
        expected = [("kvallsrunda-1", 2)] if actor == "author" else []
        assert [(r["key"], r["count"]) for r in response.json()] == expected
    if row.label == "open311 requests" and response.status_code == 200:
        ids = {int(r["service_request_id"]) for r in response.json()}
        assert (objects["restricted"] in ids) == (actor in SEES_RESTRICTED)
    if row.label.startswith("tile") and response.status_code == 200:
        decoded = mapbox_vector_tile.decode(content)
        if row.label == "tile points":
            ids = {f["properties"]["id"] for f in decoded["deviations"]["features"]}
            assert (objects["restricted"] in ids) == (actor in SEES_RESTRICTED)
        else:
            counted = sum(f["properties"]["count"] for f in decoded["cell-centres"]["features"])
            assert counted == (2 if actor in SEES_RESTRICTED else 1)
    if row.label in ("ogc items", "ogc filter") and response.status_code == 200:
        ids = {f["id"] for f in response.json()["features"]}
        assert (objects["restricted"] in ids) == (actor in SEES_RESTRICTED)
        matched = response.json()["numberMatched"]
        if row.label == "ogc filter":
            assert matched == (1 if actor in SEES_RESTRICTED else 0)
        else:
            assert matched == (2 if actor in SEES_RESTRICTED else 1)
    if row.route == "/api/forums/{forum}/patterns/hexagons" and response.status_code == 200:
        # Two deviations in the forum; the restricted one counts only for its organisation.
        assert response.json()["numberMatched"] == (2 if actor in SEES_RESTRICTED else 1)
    if row.route == "/api/forums/{forum}/actions/{action_id}" and row.method == "GET" and response.status_code == 200:
        # The action is the forum's; which of its deviations are named depends on who asks.
        expected = {objects["public"], objects["restricted"]} if actor in SEES_RESTRICTED else {objects["public"]}
        assert set(response.json()["deviations"]) == expected
    if row.route == "/api/forums/{forum}/meetings/{meeting_id}" and row.method == "GET" \
            and response.status_code == 200:
        [flagged] = [i for i in response.json()["agenda"] if i["kind"] == "flagged"]
        assert flagged["flag"]["deviation"] == (objects["restricted"] if actor in SEES_RESTRICTED else None)
    # Nothing that was refused changed anything.
    if response.status_code >= 400:
        for name in ("restricted", "public"):
            assert Deviation.objects.filter(pk=objects[name], version=objects["versions"][objects[name]],
                                            withdrawn_at__isnull=True).exists()


def test_every_api_route_has_a_row() -> None:
    document = Client().get("/api/openapi.json").json()
    routes = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    covered = {(row.method, row.route) for row in API_ROWS}
    assert routes - covered == set(), "add these endpoints to the authorization matrix"
    assert covered - routes == set(), "the matrix names endpoints that do not exist"


def _names(patterns: list[URLPattern | URLResolver], prefix: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route.startswith(("api/", "drift/", "konto/")):
                # The API is checked above; the Django admin is for operators (staff only); the account
                # pages are django-allauth's, tested in test_sign_in.py.
                continue
            names |= _names(pattern.url_patterns, route)
        elif pattern.name:
            names.add(pattern.name)
    return names


def test_every_page_post_operation_has_a_row() -> None:
    from lagesbild.alerts.views import SAVED_VIEWS_OPS
    from lagesbild.deviations.views import CATEGORY_PAGE_OPS
    from lagesbild.forums.views import MEMBER_ACTIONS
    from lagesbild.interop.views import IMPORT_PAGE_OPS
    from lagesbild.meetings.views import ACTION_PAGE_OPS, MEETING_PAGE_OPS, MEETINGS_PAGE_OPS
    from lagesbild.places.views import PLACE_PAGE_OPS
    from lagesbild.walks.views import WALK_PAGE_OPS, WALKS_PAGE_OPS

    declared = {("meetings", op) for op in MEETINGS_PAGE_OPS} | {("meeting", op) for op in MEETING_PAGE_OPS} \
        | {("action", op) for op in ACTION_PAGE_OPS} | {("place", op) for op in PLACE_PAGE_OPS} \
        | {("categories", op) for op in CATEGORY_PAGE_OPS} | {("member-action", op) for op in MEMBER_ACTIONS} \
        | {("import", op) for op in IMPORT_PAGE_OPS} | {("saved-views", op) for op in SAVED_VIEWS_OPS} \
        | {("walks", op) for op in WALKS_PAGE_OPS} | {("walk", op) for op in WALK_PAGE_OPS} \
        | {("places", "create"), ("actions", "create"), ("forum-settings", "save"), ("meeting-screen", "notes"),
           ("imports", "upload")}
    covered = {(row.route, row.label) for row in PAGE_ROWS if row.method == "POST"}
    assert declared - covered == set(), "add these page operations to the authorization matrix"


def test_every_page_has_a_row() -> None:
    pages = _names(get_resolver().url_patterns) - NOT_PAGES
    assert pages - {row.route for row in PAGE_ROWS} == set(), "add these pages to the authorization matrix"


def test_the_audit_log_leaves_out_deviations_the_coordinator_may_not_see(world: World, objects: dict[str, Any]
                                                                        ) -> None:
    """A coordinator reads the log with their organisation's rights: events about a deviation restricted to
    the police are not listed for them, on the page or in the export; the police's own events are."""
    coordinator = world.client(world.coordinator)
    content = coordinator.get("/f/farsta/logg.csv").content.decode()
    assert MARKER not in content
    assert f",deviation,{objects['restricted']}," not in content
    assert f",deviation,{objects['public']}," in content  # a deviation the coordinator may see keeps its details
    assert "Klotter vid torget" in content
    page = coordinator.get("/f/farsta/logg/").content.decode()
    assert f"#deviation-{objects['restricted']}" not in page
    assert f"#deviation-{objects['public']}" in page
