"""The map's search: places, the place names of deviations the reader may see, and addresses from a geocoder
(the loopback server of tests/basemaps.py, answering as Nominatim and Photon do)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lagesbild.deviations import services as deviations
from lagesbild.errors import InvalidInput
from lagesbild.places import search
from lagesbild.places import services as places
from tests.basemaps import ADDRESS, ADDRESS_POSITION, TileServer
from tests.conftest import World

pytestmark = pytest.mark.django_db


def find(world: World, query: str, membership: Any = None, **kwargs: Any) -> search.SearchAnswer:
    membership = membership or world.coordinator
    return search.search(membership, deviations.visible_deviations(membership), query, **kwargs)


def geocoder_requests(server: TileServer) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(path).query) for path in server.requests
            if path.startswith(("/nominatim/", "/photon/"))]


def test_places_are_found_whatever_the_case_and_those_that_start_so_come_first(world: World) -> None:
    for name in ("Gamla Ågestavägen", "Ågesta gård", "Farsta torg"):
        places.create_place(world.coordinator, places.PlaceInput(name=name, lon=18.09, lat=59.244, radius_m=50))
    found = find(world, "ågesta").results
    assert [(f.kind, f.label) for f in found] == [("place", "Ågesta gård"), ("place", "Gamla Ågestavägen")]
    assert found[0].place_id is not None and found[0].bbox is not None


def test_place_names_are_counted_over_spellings_with_their_extent(world: World) -> None:
    for lon, name in ((18.090, "Ågesta torg"), (18.092, "ågesta  torg"), (18.094, "Ågesta torg"), (18.10, "Torget")):
        world.report(world.housing_reporter, lon=lon, lat=59.244, place_name=name)
    [found] = find(world, "ÅGESTA").results
    assert (found.kind, found.label, found.count) == ("placeName", "Ågesta torg", 3)
    assert found.bbox == pytest.approx((18.090, 59.244, 18.094, 59.244))
    assert (found.lon, found.lat) == pytest.approx((18.092, 59.244))


def test_place_names_come_only_from_deviations_the_reader_may_see(world: World) -> None:
    world.report(world.police_reporter, place_name="Porten på Ågestavägen", visibility="organisation")
    world.report(world.housing_reporter, place_name="Ågestavägen 4")
    assert [f.label for f in find(world, "ågestavägen", world.housing_reporter).results] == ["Ågestavägen 4"]
    assert {f.label for f in find(world, "ågestavägen", world.police_lead).results} == {
        "Ågestavägen 4", "Porten på Ågestavägen"}
    # Withdrawn deviations are no longer anyone's.
    [mine] = [d for d in deviations.visible_deviations(world.housing_reporter)]
    deviations.withdraw_deviation(world.housing_reporter, mine.pk)
    assert find(world, "ågestavägen", world.housing_reporter).results == []


@pytest.mark.parametrize(("query", "message"), [("", "minst 2 tecken"), (" a ", "minst 2 tecken"),
                                                 ("x" * 101, "för lång")])
def test_a_search_too_short_or_too_long_is_refused(world: World, query: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        find(world, query)


def test_addresses_are_asked_for_only_when_wanted(world: World, tile_server: TileServer) -> None:
    before = len(geocoder_requests(tile_server))
    answer = find(world, ADDRESS)
    assert (answer.addresses, answer.results) == ("notAsked", [])
    assert len(geocoder_requests(tile_server)) == before  # search-as-you-type never reaches the geocoder
    answer = find(world, ADDRESS, addresses=True)
    assert answer.addresses == "ok"
    [address] = answer.results
    assert (address.kind, address.label) == ("address", f"{ADDRESS}, Farsta, Stockholm")
    assert (address.lon, address.lat) == ADDRESS_POSITION
    # Asked as Nominatim wants it: inside the forum's area (a little wider), with an identifying User-Agent,
    # and nothing about who searched.
    params = geocoder_requests(tile_server)[-1]
    assert params["q"] == [ADDRESS] and params["format"] == ["jsonv2"] and params["bounded"] == ["1"]
    west, north, east, south = (float(v) for v in params["viewbox"][0].split(","))
    assert (west, south, east, north) == pytest.approx((18.03, 59.20, 18.17, 59.29))
    headers = tile_server.headers[-1]
    assert headers["User-Agent"].startswith("Lagesbild/") and "Cookie" not in headers


def test_photon_is_read_as_well(world: World, tile_server: TileServer, settings: Any) -> None:
    settings.LAGESBILD_GEOCODER_URL = tile_server.photon
    settings.LAGESBILD_GEOCODER_KIND = "photon"
    [address] = find(world, "farstavägen 10", addresses=True).results
    assert address.label == "Farstavägen 10, Farsta, 123 47 Stockholm"
    assert (address.lon, address.lat) == ADDRESS_POSITION
    assert geocoder_requests(tile_server)[-1]["bbox"] == ["18.03000,59.20000,18.17000,59.29000"]


def test_an_answer_is_kept_for_a_day(world: World, tile_server: TileServer) -> None:
    find(world, "Farstavägen 10 B", addresses=True)
    before = len(geocoder_requests(tile_server))
    assert find(world, "Farstavägen 10 B", addresses=True).addresses == "ok"
    assert len(geocoder_requests(tile_server)) == before


def test_requests_are_spaced_as_the_geocoder_asks(world: World, settings: Any) -> None:
    settings.LAGESBILD_GEOCODER_INTERVAL = 0.5
    started = time.monotonic()
    for query in ("Farstavägen 1", "Farstavägen 2", "Farstavägen 3"):
        find(world, query, addresses=True)
    assert time.monotonic() - started >= 1.0  # three requests, two intervals between them


@pytest.mark.parametrize("where", ["closed", "not json", "not a geocoder"])
def test_a_geocoder_that_fails_leaves_the_rest_of_the_search(world: World, tile_server: TileServer,
                                                             settings: Any, where: str) -> None:
    settings.LAGESBILD_GEOCODER_URL = {
        "closed": "http://127.0.0.1:9/search",  # the discard port: nothing listens
        "not json": tile_server.url.format(z=1, x=0, y=0),  # a PNG
        "not a geocoder": tile_server.nominatim.replace("/nominatim/", "/broken/"),
    }[where]
    places.create_place(world.coordinator, places.PlaceInput(name="Farstavägens lekplats", lon=18.09, lat=59.244,
                                                             radius_m=40))
    answer = find(world, "farstavägen", addresses=True)
    assert answer.addresses == "unavailable"
    assert [f.label for f in answer.results] == ["Farstavägens lekplats"]


def test_without_a_geocoder_nothing_leaves_the_server(world: World, tile_server: TileServer, settings: Any) -> None:
    settings.LAGESBILD_GEOCODER_URL = ""
    before = len(tile_server.requests)
    answer = find(world, ADDRESS, addresses=True)
    assert (answer.addresses, answer.results) == ("off", [])
    assert len(tile_server.requests) == before


def test_the_api_answers_in_its_own_shape(world: World) -> None:
    world.report(world.housing_reporter, place_name="Farstavägen vid skolan")
    client = world.client(world.viewer)
    body = client.get("/api/forums/farsta/search", {"q": "farstavägen", "addresses": "true"}).json()
    assert body["addresses"] == "ok"
    assert [(r["kind"], r["label"], r["count"]) for r in body["results"]] == [
        ("placeName", "Farstavägen vid skolan", 1), ("address", f"{ADDRESS}, Farsta, Stockholm", None)]
    refused = client.get("/api/forums/farsta/search", {"q": "f"})
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "q"
    assert "minst 2 tecken" in refused.json()["error"]["message"]


def test_a_place_name_that_names_a_place_is_listed_once_as_the_place(world: World) -> None:
    places.create_place(world.coordinator, places.PlaceInput(name="Ågesta torg", lon=18.09, lat=59.244, radius_m=50))
    world.report(world.housing_reporter, place_name="ågesta torg")
    world.report(world.housing_reporter, place_name="Ågesta torg, porten")
    assert [(f.kind, f.label) for f in find(world, "ågesta").results] == [
        ("place", "Ågesta torg"), ("placeName", "Ågesta torg, porten")]


@pytest.mark.parametrize("path", ["/hostile/deep", "/hostile/redirect", "/hostile/slow"])
def test_a_hostile_geocoder_gives_no_addresses_and_no_error(world: World, tile_server: TileServer, settings: Any,
                                                            monkeypatch: Any, path: str) -> None:
    from lagesbild import geocoder

    monkeypatch.setattr(geocoder, "TIMEOUT_S", 1.0)  # the slow one trickles for ten seconds
    settings.LAGESBILD_GEOCODER_URL = tile_server.root + path
    started = time.monotonic()
    answer = find(world, "farstavägen", addresses=True)
    assert (answer.addresses, answer.results) == ("unavailable", [])
    # The deadline is for the whole answer, not for each read (then it would take ten seconds); the margin is
    # for a machine busy with other tests, where the search's own queries took nearly two seconds.
    assert time.monotonic() - started < 4.0


def test_results_a_geocoder_gets_wrong_are_left_out_and_the_rest_kept(world: World, tile_server: TileServer,
                                                                      settings: Any) -> None:
    settings.LAGESBILD_GEOCODER_URL = tile_server.root + "/hostile/mixed"
    answer = find(world, "farstavägen", addresses=True)
    assert answer.addresses == "ok"
    assert [(f.label, f.lon, f.lat) for f in answer.results] == [(f"{ADDRESS}, Farsta, Stockholm", *ADDRESS_POSITION)]
    settings.LAGESBILD_GEOCODER_URL = tile_server.root + "/hostile/huge-number"
    assert find(world, "farstavägen", addresses=True).results == []


def test_one_organisations_searches_are_not_answered_from_anothers_cache(world: World,
                                                                          tile_server: TileServer) -> None:
    find(world, "Farstavägen 12", world.police_reporter, addresses=True)
    before = len(geocoder_requests(tile_server))
    find(world, "Farstavägen 12", world.police_lead, addresses=True)  # the same organisation: from the cache
    assert len(geocoder_requests(tile_server)) == before
    find(world, "Farstavägen 12", world.viewer, addresses=True)  # the school asks the geocoder itself
    assert len(geocoder_requests(tile_server)) == before + 1
