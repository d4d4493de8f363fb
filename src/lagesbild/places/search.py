"""The map's search box: the forum's places, the place names its deviations carry, and addresses.

Place names come from the deviations the reader may see, and nothing else: a name, its count and its extent
are derived values, so a restricted deviation's name never shows to an organisation that may not see it.
Addresses come from the configured geocoder (lagesbild/geocoder.py), asked only when the person asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils.translation import gettext as _

from lagesbild import geocoder, geometry
from lagesbild.deviations.models import Deviation
from lagesbild.errors import InvalidInput
from lagesbild.forums.models import Membership
from lagesbild.places import services

MIN_QUERY = 2
MAX_QUERY = 100
LIMIT = 5  # of each kind
NEAR_DEGREES = 0.02  # addresses a little outside the forum's area are still found (about 1-2 km)


@dataclass(frozen=True)
class Found:
    kind: str  # "place", "placeName" or "address"
    label: str
    lon: float
    lat: float
    bbox: geometry.BBox | None = None
    count: int | None = None  # deviations carrying the place name
    place_id: int | None = None


@dataclass
class SearchAnswer:
    results: list[Found] = field(default_factory=list)
    # "off": no geocoder configured; "notAsked": not asked this time; "ok"; "unavailable": it did not answer.
    addresses: str = "off"


def clean_query(query: str) -> str:
    query = " ".join((query or "").split())
    if len(query) < MIN_QUERY:
        raise InvalidInput(_("Type at least %(min)d characters to search.") % {"min": MIN_QUERY}, field="q")
    if len(query) > MAX_QUERY:
        raise InvalidInput(_("The search is too long (at most %(max)d characters).") % {"max": MAX_QUERY},
                           field="q")
    return query


def search(membership: Membership, visible: QuerySet[Deviation], query: str, *,
           addresses: bool = False) -> SearchAnswer:
    """What `query` finds, places first, then place names, then addresses; `visible` is what the reader may see."""
    query = clean_query(query)
    found_places = _places(membership, query)
    # A place name that is also a place's name is that place: it is listed once, as the place.
    named = {f.label.casefold() for f in found_places}
    names = [f for f in _place_names(visible, query) if f.label.casefold() not in named]
    answer = SearchAnswer(results=[*found_places, *names])
    if not geocoder.configured():
        return answer
    if not addresses:
        answer.addresses = "notAsked"
        return answer
    bounds = geometry.area_bounds(membership.forum.area)
    near = (bounds[0] - NEAR_DEGREES, bounds[1] - NEAR_DEGREES, bounds[2] + NEAR_DEGREES,
            bounds[3] + NEAR_DEGREES) if bounds else None
    try:
        found = geocoder.lookup(query, near=near, limit=LIMIT,
                                scope=f"{membership.forum_id}:{membership.organisation_id}")
    except geocoder.GeocoderUnavailable:
        answer.addresses = "unavailable"
        return answer
    answer.addresses = "ok"
    answer.results += [Found("address", a.label, a.lon, a.lat, a.bbox) for a in found]
    return answer


def _rank(name: str, query: str) -> tuple[int, int, str]:
    # A name that starts with what was typed before one that only contains it; shorter (closer) names first.
    folded = name.casefold()
    return (0 if folded.startswith(query.casefold()) else 1, len(name), folded)


def _places(membership: Membership, query: str) -> list[Found]:
    wanted = query.casefold()
    matches = [p for p in services.forum_places(membership) if wanted in p.name.casefold()]
    matches.sort(key=lambda p: _rank(p.name, query))
    return [Found("place", p.name, p.lon, p.lat, p.bbox, place_id=p.pk) for p in matches[:LIMIT]]


def _place_names(visible: QuerySet[Deviation], query: str) -> list[Found]:
    # SQLite's LIKE folds case for ASCII letters only, so the lower-case and capitalised forms are asked for
    # too ("ågesta" finds "Ågesta"); PostgreSQL's UPPER() folds every letter. The exact test is in Python.
    forms = {query, query.lower(), query.upper(), query.capitalize(), query.title()}
    matching = Q()
    for form in forms:
        matching |= Q(place_name__icontains=form)
    rows = (visible.filter(matching).values("place_name")
            .annotate(n=Count("pk"), west=Min("lon"), south=Min("lat"), east=Max("lon"), north=Max("lat"))
            .order_by("-n")[:200])
    wanted = query.casefold()
    merged: dict[str, Found] = {}
    for row in rows:
        name = " ".join(row["place_name"].split())
        key = name.casefold()
        if wanted not in key:
            continue
        box = (row["west"], row["south"], row["east"], row["north"])
        seen = merged.get(key)
        if seen is not None:  # "Farsta torg" and "farsta torg": one name, the commoner spelling
            assert seen.bbox is not None and seen.count is not None
            box = (min(box[0], seen.bbox[0]), min(box[1], seen.bbox[1]),
                   max(box[2], seen.bbox[2]), max(box[3], seen.bbox[3]))
            name, count = seen.label, seen.count + row["n"]
        else:
            count = row["n"]
        box = (round(box[0], 6), round(box[1], 6), round(box[2], 6), round(box[3], 6))
        merged[key] = Found("placeName", name, round((box[0] + box[2]) / 2, 6), round((box[1] + box[3]) / 2, 6),
                            box, count=count)
    found = sorted(merged.values(), key=lambda f: (-(f.count or 0), *_rank(f.label, query)))
    return found[:LIMIT]
