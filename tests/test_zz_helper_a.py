from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from django.utils import timezone

from lagesbild.deviations.models import CategoryField, Deviation, Round
from tests.conftest import INSIDE, World

pytestmark = pytest.mark.django_db
F = "/api/forums/farsta"
PAGE = "/f/farsta/kategorier/"


def add(world, **form):
    r = world.client(world.coordinator).post(PAGE, {"op": "field-add", **form})
    assert r.status_code == 302, r.content.decode()[:300]
    return CategoryField.objects.get(label=" ".join(form["label"].split()), category__key=form["category"])


def rep(client, category, values, as_form=False, **extra):
    body = {"category": category, "lon": INSIDE[0], "lat": INSIDE[1], **extra}
    if values is not None:
        body["fields"] = json.dumps(values) if as_form else values
    if as_form:
        return client.post(f"{F}/deviations", body)
    return client.post(f"{F}/deviations", json.dumps(body), content_type="application/json")


def test_nul_in_multipart_fields(world: World) -> None:
    add(world, category="graffiti", label="Tagg", kind="text")
    c = world.client(world.housing_reporter, raise_request_exception=False)
    r = c.post(f"{F}/deviations", {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1],
                                    "fields": '{"tagg": "a\\u0000b"}'})
    print("NUL multipart:", r.status_code, r.content[:300])
    r2 = rep(c, "graffiti", {"tagg": "a\u0000b"})
    print("NUL json:", r2.status_code, r2.content[:200])


@pytest.mark.parametrize("label", ["Contains", "In", "Isnull", "Exact", "Gt", "Regex", "Has key"])
@pytest.mark.parametrize("kind", ["number", "yes_no", "text"])
def test_lookup_named_keys(world: World, label: str, kind: str) -> None:
    d = add(world, category="gathering", label=label, kind=kind)
    c = world.client(world.housing_reporter, raise_request_exception=False)
    value = {"number": 5, "yes_no": True, "text": "abc"}[kind]
    r = rep(c, "gathering", {d.key: value})
    assert r.status_code == 201, r.content
    q = {"number": "5", "yes_no": "ja", "text": "abc"}[kind]
    lst = c.get(f"{F}/deviations", {"field": f"{d.key}:{q}"})
    pat = c.get(f"{F}/patterns/fields", {"period": "all"})
    n = None
    if lst.status_code == 200:
        body = lst.json()
        n = len(body["features"]) if isinstance(body, dict) and "features" in body else body
    print(f"KEY {d.key!r} {kind}: list {lst.status_code} n={str(n)[:80]} patterns {pat.status_code} "
          f"{[(f['key'], f['filled']) for f in pat.json()] if pat.status_code == 200 else pat.content[:100]}")


@pytest.mark.parametrize("label", ["112", "2024", "Antal  personer som var på plats vid"])
def test_numeric_and_odd_keys(world: World, label: str) -> None:
    d = add(world, category="gathering", label=label, kind="number")
    d2 = add(world, category="damage", label=label, kind="number")
    c = world.client(world.housing_reporter, raise_request_exception=False)
    for dd, cat in ((d, "gathering"), (d2, "damage")):
        r = rep(c, cat, {dd.key: 7})
        assert r.status_code == 201, r.content
        detail = r.json()["fields"]
        lst = c.get(f"{F}/deviations", {"field": f"{dd.key}:7"})
        body = lst.json()
        n = len(body["features"]) if "features" in body else body
        pat = c.get(f"{F}/patterns/fields", {"period": "all"}).json()
        print(f"KEY {dd.key!r}: detail {detail} list {lst.status_code} n={n} patterns "
              f"{[(f['key'], f['filled'], f['total']) for f in pat]}")
