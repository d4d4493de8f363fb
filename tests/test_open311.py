"""Open311 GeoReport v2: read by a real client library (georeport, over HTTP, in JSON and XML) and posted to as
Open311 clients post (a form with api_key), with restricted deviations planted."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from georeport import GeoReport
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations.models import Deviation
from lagesbild.forums.models import ApiToken
from tests.conftest import MARKER, World, make_world

BASE = "/api/forums/farsta/open311/v2"


@pytest.fixture
def served(live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[World, str, dict[str, str]]:
    """A forum with a forum-wide and a restricted deviation, served over HTTP; the housing company's and the
    police's tokens."""
    world = make_world()
    world.report(world.housing_reporter, category="broken_lighting", place_name="Gångtunneln",
                 description="Lampan är trasig")
    world.report(world.police_reporter, category="suspected_dealing", visibility="organisation",
                 description=MARKER)
    keys = {"housing": ApiToken.issue(world.housing_reporter, "open311")[1],
            "police": ApiToken.issue(world.police_reporter, "open311")[1],
            "viewer": ApiToken.issue(world.viewer, "open311")[1]}
    return world, f"{live_server.url}{BASE}", keys


def netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, key: str) -> None:
    """The client is unchanged: requests sends the token as HTTP Basic from a .netrc, as for any server."""
    path = tmp_path / "netrc"
    path.write_text(f"machine {urlsplit(url).hostname} login api password {key}\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_real_client_reads_services_and_requests(served: tuple[World, str, dict[str, str]], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    _world, url, keys = served
    netrc(tmp_path, monkeypatch, url, keys["housing"])
    client = GeoReport(url, jurisdiction="farsta", output_format=fmt)
    services = {s["service_code"]: s for s in client.get_service_list()}
    assert services["broken_lighting"]["service_name"] == "Trasig belysning"
    assert services["broken_lighting"]["group"] == "Belysning"
    assert "lighting" in services
    found = client.get_service_requests()
    found = found if isinstance(found, list) else [found]  # xmltodict gives one request as a dict
    [lamp] = found  # the police's restricted one is not the housing company's to see
    assert lamp["service_code"] == "broken_lighting" and lamp["status"] == "open"
    assert lamp["address"] == "Gångtunneln" and lamp["agency_responsible"] == "Bostadsbolaget"
    assert float(lamp["lat"]) == pytest.approx(59.244) and float(lamp["long"]) == pytest.approx(18.09)
    assert client.get_service_request(lamp["service_request_id"])["description"] == "Lampan är trasig"
    assert client.get_service_definition("broken_lighting")["service_code"] == "broken_lighting"
    # The police's token sees its own restricted request, and the read is audited.
    netrc(tmp_path, monkeypatch, url, keys["police"])
    police = GeoReport(url, output_format=fmt).get_service_requests(status="open")
    assert MARKER in str(police)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.READ, changes={"via": "Open311"}).exists()


@pytest.mark.django_db(transaction=True)
def test_an_open311_client_posts_with_its_api_key(served: tuple[World, str, dict[str, str]]) -> None:
    world, url, keys = served
    form = {"api_key": keys["housing"], "service_code": "graffiti", "lat": "59.245", "long": "18.1",
            "address_string": "Farsta torg", "description": "Klotter på väggen", "email": "anna@example.se",
            "first_name": "Anna", "last_name": "Andersson", "phone": "070-1234567"}
    response = requests.post(f"{url}/requests.json", data=form, timeout=30)
    assert response.status_code == 201, response.text
    [answer] = response.json()
    deviation = Deviation.objects.get(pk=int(answer["service_request_id"]))
    assert (deviation.category.key, deviation.organisation_id, deviation.reporter_id) == (
        "graffiti", world.housing.pk, world.housing_reporter.user_id)
    assert (deviation.lon, deviation.lat, deviation.place_name) == (18.1, 59.245, "Farsta torg")
    assert "sparas inte" in answer["service_notice"]
    stored = str(Deviation.objects.filter(pk=deviation.pk).values().get())
    # The phone number's seven digits: "070" alone turned up inside a timestamp's microseconds.
    assert "anna@example.se" not in stored and "Andersson" not in stored and "1234567" not in stored
    xml = requests.post(f"{url}/requests.xml", data={**form, "service_code": "litter"}, timeout=30)
    assert xml.status_code == 201 and xml.headers["Content-Type"].startswith("text/xml")
    answer = ET.fromstring(xml.content)  # noqa: S314 - our own server's answer
    assert answer.findtext("request/service_request_id", "").isdigit()


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "params", "key", "status", "words"), [
    ("GET", "/requests.json", {}, None, 401, "api_key"),
    ("GET", "/requests.json", {"api_key": "lgb_nonsense"}, None, 401, "ingen giltig"),
    ("POST", "/requests.json", {"service_code": "graffiti", "lat": "59.245", "long": "18.1"}, "viewer", 403, None),
    ("POST", "/requests.json", {"service_code": "graffiti", "lat": "59.245"}, "housing", 400, "lat och long"),
    ("POST", "/requests.json", {"service_code": "graffiti", "lat": "north", "long": "18.1"}, "housing", 400, None),
    ("POST", "/requests.json", {"service_code": "unicorns", "lat": "59.245", "long": "18.1"}, "housing", 400,
     "unicorns"),
    ("POST", "/requests.json", {"service_code": "graffiti", "lat": "57.7", "long": "11.97"}, "housing", 400,
     "utanför"),
    ("GET", "/requests.json", {"jurisdiction_id": "skarholmen"}, "housing", 400, "farsta"),
    ("GET", "/requests.json", {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
     "housing", 400, "90"),
    ("GET", "/requests.json", {"start_date": "yesterday"}, "housing", 400, "start_date"),
    ("GET", "/requests.json", {"status": "pending"}, "housing", 400, "open eller closed"),
    ("GET", "/requests/abc.json", {}, "housing", 404, None),
    ("GET", "/requests/².json", {}, "housing", 404, None),
    ("GET", "/requests.html", {}, "housing", 404, None),
    ("GET", "/services/unicorns.json", {}, "housing", 404, None),
    ("POST", "/services.json", {}, "housing", 405, "GET"),
])
def test_bad_requests_get_open311_errors(world: World, method: str, path: str, params: dict[str, str],
                                         key: str | None, status: int, words: str | None) -> None:
    keys = {"housing": world.housing_reporter, "viewer": world.viewer}
    if key:
        params = {**params, "api_key": ApiToken.issue(keys[key], "open311")[1]}
    client = world.client()
    response = client.post(f"{BASE}{path}", params) if method == "POST" else client.get(f"{BASE}{path}", params)
    assert response.status_code == status, response.content
    [error] = response.json()
    assert error["code"] == status
    if words:
        assert words in error["description"]
    assert Deviation.objects.count() == 0


@pytest.mark.django_db
def test_errors_in_xml_and_restricted_requests_are_not_found(world: World) -> None:
    restricted = world.report(world.police_reporter, visibility="organisation", description=MARKER)
    key = ApiToken.issue(world.housing_reporter, "open311")[1]
    response = world.client().get(f"{BASE}/requests/{restricted.pk}.xml", {"api_key": key})
    assert response.status_code == 404 and MARKER not in response.content.decode()
    error = ET.fromstring(response.content).find("error")  # noqa: S314 - our own server's answer
    assert error is not None and error.findtext("code") == "404"
    assert world.client().get(f"{BASE}/requests.json", {"api_key": key,
                                                        "service_request_id": str(restricted.pk)}).json() == []
    # A member of another forum learns nothing about this one.
    other = ApiToken.issue(world.outsider, "open311")[1]
    assert world.client().get(f"{BASE}/services.json", {"api_key": other}).status_code == 404


@pytest.mark.django_db
def test_a_browser_session_may_read_but_not_post(world: World) -> None:
    client = world.client(world.housing_reporter)
    assert client.get(f"{BASE}/services.json").status_code == 200
    assert client.get(f"{BASE}/discovery.json").json()["endpoints"][0]["url"].endswith(f"{BASE}/")
    posted = client.post(f"{BASE}/requests.json", {"service_code": "graffiti", "lat": "59.245", "long": "18.1"})
    assert posted.status_code == 401 and Deviation.objects.count() == 0


@pytest.mark.django_db
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["service_code", "lat", "long", "description", "address_string",
                                               "start_date", "end_date", "status", "service_request_id",
                                               "jurisdiction_id", "email"]),
                              st.text(max_size=40) | st.sampled_from(["59.245", "18.1", "graffiti", "open", "1",
                                                                      "2026-11-01T00:00:00Z", "farsta"])),
       method=st.sampled_from(["GET", "POST"]), fmt=st.sampled_from(["json", "xml"]))
def test_no_input_gets_a_server_error(world: World, params: dict[str, str], method: str, fmt: str) -> None:
    key = ApiToken.issue(world.housing_reporter, "fuzz")[1]
    client = world.client()
    data = {k: v.replace("\x00", "") for k, v in params.items()}
    if method == "POST":
        response = client.post(f"{BASE}/requests.{fmt}", {**data, "api_key": key})
    else:
        response = client.get(f"{BASE}/requests.{fmt}", {**data, "api_key": key})
    assert response.status_code in {200, 201, 400, 403, 404}, (params, response.content[:300])
    if fmt == "xml":
        ET.fromstring(response.content)  # noqa: S314 - our own answer, well-formed whatever the text held


def test_times_are_w3c_with_the_forums_offset() -> None:
    from lagesbild.forums.models import Forum
    from lagesbild.interop.open311 import _timestamp

    forum = Forum(slug="x", name="X", timezone="Europe/Stockholm")
    assert _timestamp(dt.datetime(2026, 7, 1, 10, 0, 0, 123, tzinfo=dt.UTC), forum) == "2026-07-01T12:00:00+02:00"
