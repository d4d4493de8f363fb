"""The HTTP API: every endpoint, its error cases and the JSON error format."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import h3
import pytest
from django.test import Client
from django.utils import timezone
from ninja.responses import NinjaJSONEncoder

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations.models import Deviation, Photo
from lagesbild.forums.models import ApiToken, Membership
from tests.conftest import INSIDE, World, image_bytes

pytestmark = pytest.mark.django_db
BASE = "/api/forums/farsta"


def post_json(client: Client, url: str, data: Any, **extra: Any) -> Any:
    return client.post(url, json.dumps(data), content_type="application/json", **extra)


def patch_json(client: Client, url: str, data: Any) -> Any:
    return client.patch(url, json.dumps(data), content_type="application/json")


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["message"]
    return body["error"]


def new_deviation(**overrides: Any) -> dict[str, Any]:
    return {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1], "description": "Klotter på muren",
            **overrides}


def test_healthz() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_openapi_document_lists_the_endpoints() -> None:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/forums", "/api/forums/{forum}/deviations", "/api/forums/{forum}/deviations/{deviation_id}",
                 "/api/forums/{forum}/deviations/{deviation_id}/comments",
                 "/api/forums/{forum}/deviations/{deviation_id}/photos", "/api/forums/{forum}/categories",
                 "/api/forums/{forum}/organisations"]:
        assert path in paths, path
    create = paths["/api/forums/{forum}/deviations"]["post"]
    assert {"application/json", "multipart/form-data"} <= set(create["requestBody"]["content"])


def test_anonymous_requests_are_refused(world: World) -> None:
    response = Client().get(f"{BASE}/deviations")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"


def test_forum_of_which_one_is_not_a_member_is_not_found(world: World) -> None:
    world.report(world.police_reporter, description="HEMLIGT")
    client = world.client(world.outsider)
    for url in [f"{BASE}", f"{BASE}/deviations", f"{BASE}/categories", f"{BASE}/organisations",
                "/api/forums/does-not-exist/deviations"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert error_of(response)["code"] == "not_found"
        assert b"HEMLIGT" not in response.content
    # The same answer for a forum that exists and one that does not: nothing to learn by guessing.
    assert client.get(f"{BASE}/deviations").content == client.get("/api/forums/nope/deviations").content


def test_my_forums(world: World) -> None:
    response = world.client(world.police_lead).get("/api/forums")
    assert response.status_code == 200
    [forum] = response.json()
    assert forum["slug"] == "farsta"
    assert forum["membership"]["role"] == "org_lead"
    assert forum["bounds"] == [18.05, 59.22, 18.15, 59.27]


def test_categories_and_organisations(world: World) -> None:
    client = world.client(world.viewer)
    categories = client.get(f"{BASE}/categories").json()
    keys = {c["key"]: c for c in categories}
    assert len([c for c in categories if c["parent"] is None]) == 12
    assert keys["graffiti"]["parent"] == "damage"
    assert keys["damage"]["nameSv"] == "Skadegörelse"
    organisations = client.get(f"{BASE}/organisations").json()
    assert {o["name"] for o in organisations} == {"Stadsdelsförvaltningen", "Polisen", "Bostadsbolaget", "Skolan"}


def test_list_is_geojson_with_counts_and_next_link(world: World) -> None:
    now = timezone.now()
    for hours in range(1, 4):
        world.report(world.police_reporter, observed_at=now - dt.timedelta(hours=hours))
    client = world.client(world.housing_reporter)
    response = client.get(f"{BASE}/deviations", {"limit": 2, "bbox": "18.0,59.2,18.2,59.3"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert (body["numberMatched"], body["numberReturned"]) == (3, 2)
    feature = body["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [INSIDE[0], INSIDE[1]]}
    assert feature["properties"]["category"] == "graffiti"
    assert feature["properties"]["parentCategory"] == "damage"
    [next_link] = [link["href"] for link in body["links"] if link["rel"] == "next"]
    assert "bbox=18.0%2C59.2%2C18.2%2C59.3" in next_link
    rest = client.get(next_link).json()
    assert (rest["numberMatched"], rest["numberReturned"]) == (3, 1)  # the whole filter's, on the last page too
    everything = client.get(f"{BASE}/deviations", {"limit": 3}).json()  # one page holds them all: no count query
    assert (everything["numberMatched"], everything["numberReturned"]) == (3, 3)
    assert not [link for link in rest["links"] if link["rel"] == "next"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "18.2,59.2,18.0,59.3"}, "bbox"),
        ({"bbox": "18,95,19,96"}, "bbox"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "from"),
        ({"category": "nonsense"}, "category"),
        ({"organisation": "999999"}, "organisation"),
        ({"organisation": "abc"}, "organisation"),
        ({"status": "closed"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"cursor": "!!!"}, "cursor"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_list_rejects_bad_filters(world: World, params: dict[str, str], field: str) -> None:
    response = world.client(world.police_lead).get(f"{BASE}/deviations", params)
    assert response.status_code == 422
    assert error_of(response)["field"] == field


def test_list_filters(world: World) -> None:
    world.report(world.police_reporter, category="graffiti")
    world.report(world.housing_reporter, category="litter", description="Skräp vid Ågatan")
    client = world.client(world.police_lead)

    def matched(**params: Any) -> int:
        return int(client.get(f"{BASE}/deviations", params).json()["numberMatched"])

    assert matched() == 2
    assert matched(category="damage") == 1
    assert matched(category=["damage", "littering"]) == 2
    assert matched(organisation=world.housing.pk) == 1
    assert matched(status="new") == 2
    assert matched(q="ÅGATAN") == 1
    assert matched(**{"from": (timezone.now() + dt.timedelta(minutes=1)).isoformat()}) == 0
    # A time without an offset is read as the forum's local time.
    assert matched(**{"from": "2000-01-01T00:00", "to": "2100-01-01T00:00"}) == 2


def test_create_as_json_returns_the_detail(world: World) -> None:
    client = world.client(world.police_reporter)
    response = post_json(client, f"{BASE}/deviations", new_deviation(
        observed_at="2026-03-01T14:30:00+01:00", severity="high", place_name="Torget"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["category"]["key"] == "graffiti"
    assert body["category"]["parent"]["key"] == "damage"
    assert body["observedAt"].startswith("2026-03-01T13:30:00")
    assert body["severity"] == "high"
    assert body["status"] == "new"
    assert body["version"] == 1
    assert body["organisation"]["name"] == "Polisen"
    assert body["permissions"] == {"edit": True, "changeStatus": False, "comment": True, "flagForPolice": True,
                                   "recordPoliceReport": True}
    assert [e["action"] for e in body["history"]] == ["create"]
    assert Deviation.objects.get(pk=body["id"]).reporter == world.police_reporter.user


def test_create_defaults_observed_at_to_now(world: World) -> None:
    before = timezone.now()
    response = post_json(world.client(world.police_reporter), f"{BASE}/deviations", new_deviation())
    assert response.status_code == 201
    observed = Deviation.objects.get(pk=response.json()["id"]).observed_at
    assert before <= observed <= timezone.now()


def test_create_as_multipart_with_photos(world: World) -> None:
    client = world.client(world.police_reporter)
    response = client.post(f"{BASE}/deviations", {
        "category": "graffiti", "lon": str(INSIDE[0]), "lat": str(INSIDE[1]), "observed_at": "2026-03-01T14:30",
        "observed_until": "", "visibility": "named", "shared_with": [str(world.housing.pk), str(world.school.pk)],
        "photos": [_file("a.jpg", image_bytes()), _file("b.png", image_bytes("PNG"))],
    })
    assert response.status_code == 201, response.content
    body = response.json()
    assert len(body["photos"]) == 2
    assert {o["name"] for o in body["sharedWith"]} == {"Bostadsbolaget", "Skolan"}
    # The naive time from the form is Stockholm time: 14:30 CET is 13:30 UTC.
    assert body["observedAt"].startswith("2026-03-01T13:30:00")


def _file(name: str, content: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content)


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        (new_deviation(lon=200), 422, "lon"),
        (new_deviation(lat="north"), 422, "lat"),
        (new_deviation(lon=16.0, lat=58.0), 422, "lon"),
        (new_deviation(category="unicorns"), 422, "category"),
        (new_deviation(observed_at="2999-01-01T00:00:00Z"), 422, "observed_at"),
        (new_deviation(observed_at="last tuesday"), 422, "observed_at"),
        (new_deviation(description="x" * 5000), 422, "description"),
        (new_deviation(visibility="named", shared_with=[424242]), 422, "shared_with"),
        ({"lon": 18.09, "lat": 59.24}, 422, "category"),
        ([1, 2, 3], 400, None),
    ],
)
def test_create_rejects_bad_input_and_saves_nothing(world: World, payload: Any, status: int, field: str) -> None:
    response = post_json(world.client(world.police_reporter), f"{BASE}/deviations", payload)
    assert response.status_code == status, response.content
    assert error_of(response)["field"] == field
    assert Deviation.objects.count() == 0


def test_create_rejects_malformed_json_and_wrong_content_type(world: World) -> None:
    client = world.client(world.police_reporter)
    response = client.post(f"{BASE}/deviations", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"
    response = client.post(f"{BASE}/deviations", "category=graffiti", content_type="text/plain")
    assert response.status_code == 415
    assert Deviation.objects.count() == 0


def test_create_with_bad_photo_saves_nothing(world: World, settings: Any) -> None:
    client = world.client(world.police_reporter)
    response = client.post(f"{BASE}/deviations", {
        "category": "graffiti", "lon": str(INSIDE[0]), "lat": str(INSIDE[1]),
        "photos": [_file("ok.jpg", image_bytes()), _file("notes.txt", b"hello, not a picture")]})
    assert response.status_code == 415
    assert error_of(response)["field"] == "photos"
    assert "notes.txt" in error_of(response)["message"]
    settings.LAGESBILD_PHOTO_MAX_BYTES = 200
    response = client.post(f"{BASE}/deviations", {
        "category": "graffiti", "lon": str(INSIDE[0]), "lat": str(INSIDE[1]),
        "photos": [_file("big.jpg", image_bytes())]})
    assert response.status_code == 413
    assert Deviation.objects.count() == 0
    assert Photo.objects.count() == 0


def test_viewer_may_not_report(world: World) -> None:
    response = post_json(world.client(world.viewer), f"{BASE}/deviations", new_deviation())
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


def test_detail_hides_reporter_name_from_other_organisations(world: World) -> None:
    deviation = world.report(world.police_reporter)
    own = world.client(world.police_lead).get(f"{BASE}/deviations/{deviation.pk}").json()
    other = world.client(world.housing_reporter).get(f"{BASE}/deviations/{deviation.pk}").json()
    assert own["reporter"] == world.police_reporter.user.display_name
    assert other["reporter"] is None
    assert other["organisation"]["name"] == "Polisen"
    assert all(event["actor"] is None for event in other["history"])


def test_restricted_deviation_is_invisible_to_other_organisations(world: World) -> None:
    deviation = world.report(world.police_reporter, visibility="organisation", description="HEMLIGT")
    client = world.client(world.housing_reporter)
    for response in [
        client.get(f"{BASE}/deviations/{deviation.pk}"),
        client.get(f"{BASE}/deviations/{deviation.pk}/comments"),
        client.get(f"{BASE}/deviations/{deviation.pk}/history"),
        patch_json(client, f"{BASE}/deviations/{deviation.pk}", {"version": 1, "status": "resolved"}),
        client.delete(f"{BASE}/deviations/{deviation.pk}"),
        post_json(client, f"{BASE}/deviations/{deviation.pk}/comments", {"body": "hej"}),
    ]:
        assert response.status_code == 404
        assert b"HEMLIGT" not in response.content
    listing = client.get(f"{BASE}/deviations", {"q": "hemligt"})
    assert listing.json()["numberMatched"] == 0
    assert b"HEMLIGT" not in client.get(f"{BASE}/deviations").content


def test_patch_with_version(world: World) -> None:
    deviation = world.report(world.police_reporter)
    client = world.client(world.police_reporter)
    url = f"{BASE}/deviations/{deviation.pk}"
    response = patch_json(client, url, {"version": 1, "description": "Nytt klotter", "observed_until": None})
    assert response.status_code == 200, response.content
    assert (response.json()["description"], response.json()["version"]) == ("Nytt klotter", 2)
    stale = patch_json(client, url, {"version": 1, "description": "Gammalt"})
    assert stale.status_code == 409
    assert error_of(stale)["code"] == "conflict"
    assert Deviation.objects.get(pk=deviation.pk).description == "Nytt klotter"
    assert patch_json(client, url, {"description": "no version"}).status_code == 422
    assert patch_json(client, url, {"version": 2, "colour": "red"}).status_code == 422
    response = client.patch(url, "{", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"


def test_patch_status_by_role(world: World) -> None:
    deviation = world.report(world.police_reporter)
    url = f"{BASE}/deviations/{deviation.pk}"
    assert patch_json(world.client(world.police_reporter), url, {"version": 1, "status": "resolved"}).status_code == 403
    response = patch_json(world.client(world.coordinator), url, {"version": 1, "status": "resolved"})
    assert response.status_code == 200
    assert response.json()["statusLabel"]


def test_delete_withdraws(world: World) -> None:
    deviation = world.report(world.police_reporter)
    url = f"{BASE}/deviations/{deviation.pk}"
    assert world.client(world.housing_reporter).delete(url).status_code == 403
    assert world.client(world.police_reporter).delete(url).status_code == 204
    assert world.client(world.police_reporter).get(url).status_code == 404
    assert AuditEvent.objects.filter(object_id=deviation.pk, action="withdraw").count() == 1


def test_comments_endpoint(world: World) -> None:
    deviation = world.report(world.police_reporter)
    url = f"{BASE}/deviations/{deviation.pk}/comments"
    response = post_json(world.client(world.housing_reporter), url, {"body": "Vi ser det också."})
    assert response.status_code == 201
    assert response.json()["organisation"] == "Bostadsbolaget"
    assert post_json(world.client(world.housing_reporter), url, {"body": ""}).status_code == 422
    assert post_json(world.client(world.housing_reporter), url, {}).status_code == 422
    assert post_json(world.client(world.viewer), url, {"body": "Hej"}).status_code == 403
    listed = world.client(world.viewer).get(url).json()
    assert [c["body"] for c in listed] == ["Vi ser det också."]


def test_photo_upload_and_download_respect_visibility(world: World) -> None:
    deviation = world.report(world.police_reporter, visibility="organisation")
    url = f"{BASE}/deviations/{deviation.pk}/photos"
    response = world.client(world.police_reporter).post(url, {"photos": [_file("a.jpg", image_bytes(exif_gps=True))]})
    assert response.status_code == 201, response.content
    [photo] = response.json()
    image = world.client(world.police_lead).get(photo["url"])
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    assert b"SecretCam" not in b"".join(image.streaming_content)
    assert "private" in image["Cache-Control"]
    assert world.client(world.police_lead).get(photo["thumbnailUrl"]).status_code == 200
    # Another organisation cannot fetch the image even with its exact URL.
    assert world.client(world.housing_reporter).get(photo["url"]).status_code == 404
    assert world.client(world.housing_reporter).get(photo["thumbnailUrl"]).status_code == 404
    assert Client().get(photo["url"]).status_code == 401
    # Non-multipart, empty and non-image uploads are refused.
    client = world.client(world.police_reporter)
    assert post_json(client, url, {"photos": []}).status_code == 415
    assert client.post(url, {}).status_code == 422
    assert client.post(url, {"photos": [_file("x.gif", b"GIF89a....")]}).status_code == 415
    other = world.client(world.housing_reporter)
    assert other.post(url, {"photos": [_file("a.jpg", image_bytes())]}).status_code == 404


def test_bearer_token(world: World) -> None:
    _token, key = ApiToken.issue(world.police_lead, "integration")
    response = Client().get(f"{BASE}/deviations", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    # Token requests need no CSRF token: nothing sends the header automatically.
    client = Client(enforce_csrf_checks=True)
    created = post_json(client, f"{BASE}/deviations", new_deviation(), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert created.status_code == 201
    assert Client().get(f"{BASE}/deviations", HTTP_AUTHORIZATION="Bearer lgb_wrong").status_code == 401
    ApiToken.objects.update(revoked_at=timezone.now())
    assert Client().get(f"{BASE}/deviations", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401


def test_a_token_reaches_only_its_forum_and_organisation(world: World) -> None:
    from lagesbild.forums.services import add_member

    # The police lead is a member of the other forum too, but the token was made for Farsta.
    add_member(world.other_forum, email=world.police_lead.user.email, organisation=world.outsider.organisation,
               role="coordinator")
    _token, key = ApiToken.issue(world.police_lead, "farsta only")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    assert Client().get(f"{BASE}/deviations", **auth).status_code == 200
    assert Client().get("/api/forums/skarholmen/deviations", **auth).status_code == 404
    assert [f["slug"] for f in Client().get("/api/forums", **auth).json()] == ["farsta"]
    # Moved to another organisation, the user no longer speaks for the token's one: the token stops.
    Membership.objects.filter(pk=world.police_lead.pk).update(organisation=world.housing)
    assert Client().get(f"{BASE}/deviations", **auth).status_code == 404


def test_session_writes_need_csrf(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.police_reporter.user)
    response = post_json(client, f"{BASE}/deviations", new_deviation())
    assert response.status_code in {401, 403}
    assert Deviation.objects.count() == 0


def test_errors_speak_swedish_by_default_and_english_on_request(world: World) -> None:
    client = world.client(world.police_reporter)
    swedish = post_json(client, f"{BASE}/deviations", new_deviation(lon=16.0, lat=58.0))
    assert "utanför" in error_of(swedish)["message"]
    english = post_json(client, f"{BASE}/deviations", new_deviation(lon=16.0, lat=58.0), HTTP_ACCEPT_LANGUAGE="en")
    assert "outside" in error_of(english)["message"]


def test_aggregates_count_only_what_the_member_may_see(world: World) -> None:
    for lon in (18.06, 18.061, 18.14):
        world.report(world.housing_reporter, lon=lon, lat=59.23)
    world.report(world.police_reporter, lon=18.06, lat=59.23, visibility="organisation")
    url = f"{BASE}/deviations/aggregates"
    params = {"bbox": "18.05,59.22,18.15,59.27", "cells": 8}
    housing = world.client(world.housing_reporter).get(url, params).json()
    police = world.client(world.police_lead).get(url, params).json()
    assert housing["numberMatched"] == 3
    assert sorted(f["properties"]["count"] for f in housing["features"]) == [1, 2]
    assert housing["categories"] == {"damage": 3}
    assert police["numberMatched"] == 4
    assert sorted(f["properties"]["count"] for f in police["features"]) == [1, 3]
    # Each cell is an H3 hexagon, its point the hexagon's centre.
    two = next(f for f in housing["features"] if f["properties"]["count"] == 2)
    lat, lon = h3.cell_to_latlng(two["properties"]["cell"])
    assert two["geometry"]["coordinates"] == [round(lon, 6), round(lat, 6)]
    assert h3.latlng_to_cell(59.23, 18.0605, h3.get_resolution(two["properties"]["cell"])) == two["properties"]["cell"]
    filtered = world.client(world.police_lead).get(url, {**params, "category": "littering"}).json()
    assert filtered["numberMatched"] == 0
    bad = world.client(world.police_lead).get(url, {"bbox": "18.05,59.22,18.15,59.27", "cells": 1000})
    assert bad.status_code == 422
    assert error_of(bad)["field"] == "cells"
    assert error_of(world.client(world.police_lead).get(url))["field"] == "bbox"


def test_unknown_paths_and_methods_answer_in_the_error_format(world: World) -> None:
    client = world.client(world.police_reporter)
    missing = client.get("/api/no-such-thing")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    deviation = world.report(world.police_reporter)
    wrong_method = client.put(f"{BASE}/deviations/{deviation.pk}", "{}", content_type="application/json")
    assert wrong_method.status_code == 405
    assert error_of(wrong_method)["code"] == "method_not_allowed"
    assert "PATCH" in wrong_method["Allow"]
    bad_id = client.get(f"{BASE}/deviations/abc")
    assert bad_id.status_code == 422
    assert error_of(bad_id)["field"] == "deviation_id"


def test_personal_data_is_warned_about_and_can_be_refused(world: World) -> None:
    client = world.client(world.police_reporter)
    text = "Mannen med personnummer 811218-9876 ringde från 070-123 45 67"
    check = post_json(client, f"{BASE}/personal-data-check", {"fields": {"description": text}}).json()
    assert [w["code"] for w in check["warnings"]] == ["personal_identity_number", "phone_number"]
    assert check["blocking"] is False
    created = post_json(client, f"{BASE}/deviations", new_deviation(description=text))
    assert created.status_code == 201
    assert [w["field"] for w in created.json()["warnings"]] == ["description", "description"]
    comment = post_json(client, f"{BASE}/deviations/{created.json()['id']}/comments", {"body": "Mejla a@b.se"})
    assert comment.json()["warnings"][0]["code"] == "email_address"

    world.forum.block_personal_data = True
    world.forum.save()
    refused = post_json(client, f"{BASE}/deviations", new_deviation(description=text))
    assert refused.status_code == 422
    assert error_of(refused)["code"] == "personal_data"
    assert error_of(refused)["field"] == "description"
    assert "811218-9876" in error_of(refused)["message"]
    assert Deviation.objects.count() == 1
    refused_comment = post_json(client, f"{BASE}/deviations/{created.json()['id']}/comments", {"body": "ABC 123"})
    assert error_of(refused_comment)["code"] == "personal_data"
    assert post_json(client, f"{BASE}/personal-data-check", {"fields": {"x": "y"}}).json()["blocking"] is True
    assert post_json(client, f"{BASE}/personal-data-check", {"fields": {"x": "y" * 5000}}).status_code == 422
    assert post_json(client, f"{BASE}/personal-data-check", {"text": "y"}).status_code == 422
    assert post_json(world.client(world.outsider), f"{BASE}/personal-data-check", {"fields": {}}).status_code == 404


def _feature_in_python(deviation: Any) -> dict[str, Any]:
    """What a list feature holds, built in Python from the stored deviation: the database writes it
    (deviations.feature_json), and must write the same."""
    anchor = [round(deviation.lon, 6), round(deviation.lat, 6)]
    category = deviation.category
    properties: dict[str, Any] = {
        "id": deviation.pk, "category": category.key,
        "parentCategory": category.parent.key if category.parent else category.key,
        "observedAt": deviation.observed_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "status": deviation.status, "severity": deviation.severity, "organisation": deviation.organisation_id,
        "placeName": deviation.place_name, "visibility": deviation.visibility}
    if deviation.shape:
        properties["anchor"] = anchor
    return {"type": "Feature", "id": deviation.pk,
            "geometry": deviation.shape or {"type": "Point", "coordinates": anchor}, "properties": properties}


def test_the_features_the_database_writes_equal_those_built_in_python(world: World) -> None:
    """Times with and without microseconds (whole milliseconds too), a subcategory and a main one, place names
    with quotes, a backslash, a line break, other control characters and letters beyond ASCII, positions with
    many decimals, a line and an area; read over pages by cursor."""
    now = timezone.now().replace(microsecond=0)
    places = ['Torget "Norra"', "Gång\\väg\nnedre", "Ängsgården 3 \u2013 baksidan", "", "<script>x</script>",
              "Tab\there, \u0001\u001f and \u2028 \U0001f6b2"]  # control characters that JSON must escape
    for k in range(12):
        # Microseconds of every kind: none, some, and whole milliseconds (.877000, .500000).
        fraction = 0 if k % 2 else [123456 + k, 123000, 500000][k % 3]
        world.report(world.housing_reporter, category=["graffiti", "damage", "littering"][k % 3],
                     lon=18.0912345678 + k * 0.00013, lat=59.2441234567 + k * 0.00007, place_name=places[k % 6],
                     observed_at=now - dt.timedelta(hours=k, microseconds=fraction))
    world.report(world.housing_reporter, lon=18.0912345, lat=59.2441235)  # halfway between two 6th decimals
    world.report(world.housing_reporter, shape={"type": "LineString", "coordinates": [[18.09, 59.24],
                                                                                      [18.1, 59.2412345]]},
                 lon=0.0, lat=0.0, observed_at=now - dt.timedelta(minutes=30))
    world.report(world.police_reporter, visibility="organisation", observed_at=now - dt.timedelta(minutes=40),
                 shape={"type": "Polygon", "coordinates": [[[18.08, 59.25], [18.082, 59.25], [18.082, 59.251],
                                                            [18.08, 59.25]]]})
    client = world.client(world.police_reporter)
    features, url, params = [], f"{BASE}/deviations", {"limit": 5}
    while url:
        body = client.get(url, params).json()
        features += body["features"]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), "")
        params = {}
    assert len(features) == 15
    expected = [_feature_in_python(d) for d in Deviation.objects.select_related("category__parent")
                .order_by("-observed_at", "-id")]

    def anchor_of(feature: dict[str, Any]) -> list[float]:
        return feature["properties"].pop("anchor", None) or feature["geometry"].pop("coordinates")

    def halfway(value: float) -> bool:
        return abs(value * 1e6 % 1 - 0.5) < 1e-4

    # Rounded to 6 decimals by the database, which may round a value (about) exactly halfway the other way than
    # Python does (docs/api.md): there, the last decimal can differ by one; anywhere else they must be equal.
    halfways = 0
    for got, wanted in zip(features, expected, strict=True):
        stored = Deviation.objects.get(pk=got["id"])
        position, rounded = anchor_of(got), anchor_of(wanted)
        for value, written, by_python in zip((stored.lon, stored.lat), position, rounded, strict=True):
            if halfway(value):
                halfways += 1
                assert written == pytest.approx(by_python, abs=1.001e-6)
            else:
                assert written == by_python, (value, written, by_python)
    assert halfways >= 2  # the report made halfway between two 6th decimals, at least
    assert features == expected
    assert {f["geometry"]["type"] for f in features} == {"Point", "LineString", "Polygon"}
    assert any("." in f["properties"]["observedAt"] for f in features)


def test_the_openapi_document_is_built_once_and_each_caller_gets_a_copy_of_its_own(client: Client) -> None:
    from lagesbild.api import api

    first = api.get_openapi_schema(path_prefix="/api/")
    first["paths"].clear()  # what one caller does to its copy reaches no other
    assert api.get_openapi_schema(path_prefix="/api/")["paths"]
    served = client.get("/api/openapi.json")
    assert served.status_code == 200 and json.loads(served.content)["paths"]
    # A script prefix that a proxy passed on (SCRIPT_NAME, which Django's WSGI handler sets as the request's
    # prefix) gives that request its own paths, and no other.
    from django.urls import set_script_prefix

    set_script_prefix("/x/")
    try:
        prefixed = api.get_openapi_schema()["paths"]
    finally:
        set_script_prefix("/")
    assert prefixed and all(path.startswith("/x/api/") for path in prefixed)
    for n in range(20):  # prefixes that a proxy passed on: a few are kept, the latest ones
        set_script_prefix(f"/p{n}/")
        try:
            api.get_openapi_schema()
        finally:
            set_script_prefix("/")
    assert api.document_text.cache_info().currsize == 16
    assert all(path.startswith("/api/") for path in api.get_openapi_schema()["paths"])
    assert all(path.startswith("/api/") for path in json.loads(client.get("/api/openapi.json").content)["paths"])


def test_a_document_for_another_script_prefix_equals_the_one_ninja_builds_for_it() -> None:
    from ninja import NinjaAPI

    from lagesbild.api import api

    for prefix in ("/x/api/", "/api/", "/a/b/api/", "", "//x//", "/{a:b}/api/"):  # the last two found from outside
        built = json.loads(json.dumps(NinjaAPI.get_openapi_schema(api, path_prefix=prefix), cls=NinjaJSONEncoder))
        assert api.get_openapi_schema(path_prefix=prefix) == built


def test_every_answer_in_the_openapi_document_has_a_description() -> None:
    from lagesbild.api import api

    lacking = [(path, method, status) for path, item in api.get_openapi_schema(path_prefix="/api/")["paths"].items()
               for method, operation in item.items() for status, answer in operation["responses"].items()
               if not answer.get("description")]
    assert lacking == []  # OpenAPI requires one
