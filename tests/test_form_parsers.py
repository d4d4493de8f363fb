"""Hypothesis over what the pages' forms parse: any text at all gives a value within bounds or a clear
InvalidInput, never another exception; and any text in any field of a page's form gives a 4xx page with a
message or a success, never a server error."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lagesbild import inputs
from lagesbild.errors import InvalidInput
from tests.conftest import World

# Text as people and programs send it: digits of every script, signs, spaces, exponents, and anything else.
NUMBERISH = st.one_of(st.text(), st.from_regex(r"[ +\-]?[0-9²³٣߁]{0,25}([.,][0-9]{0,5})?(e[+-]?[0-9]{1,4})?",
                                                fullmatch=True), st.integers().map(str))
DATEISH = st.one_of(st.text(), st.dates().map(str), st.datetimes().map(lambda d: d.isoformat(timespec="minutes")),
                    st.from_regex(r"[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}(T[0-9]{1,2}:[0-9]{2})?", fullmatch=True))


def refused_or(value_check: Any, parse: Any, text: str) -> None:
    try:
        value = parse(text)
    except InvalidInput as exc:
        assert exc.message
        return
    assert value is None or value_check(value), value


@pytest.mark.pure
@given(NUMBERISH)
def test_whole_numbers(text: str) -> None:
    refused_or(lambda v: isinstance(v, int) and 0 <= v <= inputs.MAX_INT, inputs.parse_int, text)
    refused_or(lambda v: 1 <= v <= inputs.MAX_INT, inputs.parse_id, text)


@pytest.mark.pure
@given(NUMBERISH)
def test_decimals(text: str) -> None:
    refused_or(lambda v: isinstance(v, float) and math.isfinite(v), inputs.parse_float, text)


@pytest.mark.pure
@given(DATEISH)
def test_dates(text: str) -> None:
    refused_or(lambda v: inputs.FIRST_YEAR <= v.year <= inputs.LAST_YEAR, inputs.parse_date, text)


@pytest.mark.pure
@given(DATEISH, st.sampled_from(["Europe/Stockholm", "America/Havana", "Australia/Lord_Howe", "UTC"]))
def test_local_times_in_any_zone(text: str, zone: str) -> None:
    def sensible(value: dt.datetime) -> bool:
        value.astimezone(dt.UTC)  # an aware time that can be stored
        return value.tzinfo is not None and inputs.FIRST_YEAR <= value.year <= inputs.LAST_YEAR

    refused_or(sensible, lambda t: inputs.parse_local_datetime(t, "when", zone), text)


@pytest.mark.pure
@given(st.one_of(st.text(), st.binary(), st.integers(0, 5000).map(lambda n: "[" * n + "]" * n)))
def test_json(text: str | bytes) -> None:
    try:
        inputs.loads_json(text)
    except InvalidInput:
        pass


# Every field the meeting page's forms send, each filled with whatever hypothesis makes up.
FIELDS = st.fixed_dictionaries({}, optional={
    name: st.one_of(NUMBERISH, DATEISH, st.text(max_size=30))
    for name in ("item", "title", "place", "notes", "decision", "organisations", "people", "held_at",
                 "period_start", "period_end", "location", "organisation", "due_date", "action", "body",
                 "status", "correction_reason")})


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(op=st.sampled_from(["add_item", "save_item", "up", "down", "remove_item", "attendance", "details",
                           "action", "follow_up"]), fields=FIELDS)
def test_the_meeting_pages_forms_never_fail_on_the_server(world: World, objects: dict[str, Any], op: str,
                                                         fields: dict[str, str]) -> None:
    response = world.client(world.coordinator).post(f"/f/farsta/moten/{objects['meeting']}/",
                                                    {"op": op, **fields})
    assert response.status_code < 500
    if response.status_code >= 400:  # the form with its message, or the page for a request that cannot be read
        page = response.content.decode()
        assert 'class="error-summary"' in page or "Begäran kunde inte läsas" in page


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(url=st.sampled_from(["/f/farsta/atgarder/", "/f/farsta/platser/", "/f/farsta/moten/",
                            "/f/farsta/installningar/", "/f/farsta/kategorier/"]),
       fields=st.dictionaries(st.sampled_from(["title", "organisation", "due_date", "responsible", "place", "lon",
                                               "lat", "deviations", "name", "radius_m", "area_drawn", "held_at",
                                               "period_start", "period_end", "op", "text", "deviation",
                                               "reminder_days", "retention_months", "timezone", "hide", "show",
                                               "name_sv", "name_en", "parent", "color"]),
                              st.one_of(NUMBERISH, DATEISH, st.text(max_size=40)), max_size=8))
def test_the_other_pages_forms_never_fail_on_the_server(world: World, url: str, fields: dict[str, str]) -> None:
    response = world.client(world.coordinator).post(url, fields)
    assert response.status_code < 500, response.content[:300]
