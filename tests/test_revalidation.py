"""Answers travel compressed, and a map revalidates a list or aggregates it has (304) instead of fetching it
again, without learning from the ETag that something it may not see was written."""

from __future__ import annotations

import gzip

import orjson
import pytest
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from lagesbild.middleware import CompressionMiddleware
from tests.conftest import World

pytestmark = pytest.mark.django_db
LIST = "/api/forums/farsta/deviations"
AGGREGATES = "/api/forums/farsta/deviations/aggregates"
BOX = {"bbox": "18.05,59.22,18.15,59.27"}


def test_a_list_is_sent_gzipped_to_who_accepts_it(world: World) -> None:
    for _ in range(30):
        world.report(world.housing_reporter, category="graffiti", place_name="Farsta centrum")
    client = world.client(world.housing_reporter)
    packed = client.get(LIST, BOX, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    body = orjson.loads(gzip.decompress(packed.content))
    assert body["numberMatched"] == 30
    plain = client.get(LIST, BOX)
    assert not plain.has_header("Content-Encoding")
    assert len(packed.content) * 4 < len(plain.content)
    assert orjson.loads(plain.content)["features"] == body["features"]


@pytest.mark.parametrize("content_type", ["text/event-stream; charset=utf-8", "image/jpeg",
                                          "application/zip", "application/octet-stream", "font/woff2"])
def test_live_streams_and_compressed_files_are_sent_as_they_are(content_type: str) -> None:
    request = RequestFactory().get("/", headers={"Accept-Encoding": "gzip"})
    streamed = StreamingHttpResponse(iter([b"data: 1\n\n"] * 50), content_type=content_type)
    middleware = CompressionMiddleware(lambda r: streamed)
    answer = middleware(request)
    assert not answer.has_header("Content-Encoding")
    whole = HttpResponse(b"x" * 5000, content_type=content_type)
    assert not CompressionMiddleware(lambda r: whole)(request).has_header("Content-Encoding")
    text = HttpResponse(b"x" * 5000, content_type="application/json")
    assert CompressionMiddleware(lambda r: text)(request)["Content-Encoding"] == "gzip"
    part = HttpResponse(b"x" * 5000, content_type="application/json", status=206)
    assert not CompressionMiddleware(lambda r: part)(request).has_header("Content-Encoding")


@pytest.mark.parametrize("url", [LIST, AGGREGATES])
def test_a_view_unchanged_is_revalidated_and_a_hidden_write_changes_nothing(world: World, url: str) -> None:
    world.report(world.housing_reporter, category="graffiti")
    housing = world.client(world.housing_reporter)
    police = world.client(world.police_reporter)
    first = housing.get(url, BOX)
    tag = first["ETag"]
    assert first.status_code == 200 and tag
    again = housing.get(url, BOX, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    police_tag = police.get(url, BOX)["ETag"]
    # The police report something only they may see: the housing company's view is what it was, ETag and all.
    world.report(world.police_reporter, category="suspected_dealing", visibility="organisation")
    assert housing.get(url, BOX, headers={"If-None-Match": tag}).status_code == 304
    changed = police.get(url, BOX, headers={"If-None-Match": police_tag})
    assert changed.status_code == 200 and changed["ETag"] != police_tag
    # Something everyone may see changes the housing company's view too.
    world.report(world.police_reporter, category="littering")
    fresh = housing.get(url, BOX, headers={"If-None-Match": tag})
    assert fresh.status_code == 200 and fresh["ETag"] != tag
    assert orjson.loads(fresh.content)["numberMatched"] == 2


def test_another_filter_is_another_answer(world: World) -> None:
    world.report(world.housing_reporter, category="graffiti")
    client = world.client(world.housing_reporter)
    everything = client.get(LIST, BOX)
    only_fire = client.get(LIST, {**BOX, "category": "fire"}, headers={"If-None-Match": everything["ETag"]})
    assert only_fire.status_code == 200
    assert orjson.loads(only_fire.content)["numberMatched"] == 0


@pytest.mark.parametrize("url", [LIST, AGGREGATES, "/api/forums/farsta/tiles/WebMercatorQuad/14/9015/4825"])
def test_a_gzipped_answers_etag_revalidates(world: World, url: str) -> None:
    """gzip makes an ETag weak on the way out (W/"…"); sent back so, it still names the answer."""
    world.report(world.housing_reporter, category="graffiti", lon=18.09, lat=59.244)
    client = world.client(world.housing_reporter)
    gzipped = {"Accept-Encoding": "gzip"}
    first = client.get(url, BOX, headers=gzipped)
    assert first.status_code == 200
    tag = first["ETag"]
    again = client.get(url, BOX, headers={**gzipped, "If-None-Match": tag})
    assert again.status_code == 304, (tag, again.status_code)
    assert client.get(url, BOX, headers={**gzipped, "If-None-Match": '"something-else"'}).status_code == 200
