"""Places: drawing them, which deviations lie in them, their history, and suggesting new ones.

A deviation belongs to a place by geometry, worked out when asked, so a place drawn today gathers the
deviations reported there before it was drawn.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from shapely.geometry import Point, shape

from lagesbild import geometry, spatial_index
from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.errors import InvalidInput, NotFound
from lagesbild.forums.models import Membership
from lagesbild.forums.services import require_coordinator
from lagesbild.places.models import Place

# As in deviations.services: a period up to this long is read by time, not through the spatial index.
SHORT_PERIOD = dt.timedelta(days=92)
MIN_RADIUS = 10
MAX_RADIUS = 2000
MAX_NAME = 120
METRES_PER_DEGREE_LAT = 111_320.0


@dataclass
class PlaceInput:
    name: str
    description: str = ""
    lon: float | None = None
    lat: float | None = None
    radius_m: int | None = None
    area: dict[str, Any] | None = None  # a GeoJSON Polygon; when given, lon/lat/radius are not used


def forum_places(membership: Membership) -> QuerySet[Place]:
    return Place.objects.filter(forum_id=membership.forum_id)


def get_place(membership: Membership, place_id: int) -> Place:
    place = forum_places(membership).filter(pk=place_id).first()
    if place is None:
        raise NotFound(_("No such place."))
    return place


def _geometry_fields(membership: Membership, data: PlaceInput) -> dict[str, Any]:
    """Validate a place's shape and work out its centre and bounding box."""
    forum_area = membership.forum.area
    if data.area is not None:
        geom = geometry.validate_area(data.area, geometry.MAX_PLACE_CORNERS)
        if geom.geom_type != "Polygon":
            raise InvalidInput(_("A place is one connected area; draw it as a single polygon."), field="area")
        if forum_area and not shape(forum_area).covers(geom):
            raise InvalidInput(_("The place lies outside the forum's area."), field="area")
        inside = geom.representative_point()
        lon, lat = inside.x, inside.y
        min_lon, min_lat, max_lon, max_lat = geom.bounds
        radius = None
        shape_kind = Place.Shape.POLYGON
        area = geometry.as_geojson(geom)
    else:
        if data.lon is None or data.lat is None:
            raise InvalidInput(_("Choose where the place is: a point on the map, or draw its area."), field="lon")
        geometry.check_lon_lat(data.lon, data.lat)
        if not geometry.area_contains(forum_area, data.lon, data.lat):
            raise InvalidInput(_("The place lies outside the forum's area."), field="lon")
        if data.radius_m is None or not MIN_RADIUS <= data.radius_m <= MAX_RADIUS:
            raise InvalidInput(_("The radius must be between %(min)d and %(max)d metres.") % {
                "min": MIN_RADIUS, "max": MAX_RADIUS}, field="radius_m")
        lon, lat, radius, area = data.lon, data.lat, data.radius_m, None
        min_lon, min_lat, max_lon, max_lat = circle_bbox(lon, lat, radius)
        shape_kind = Place.Shape.CIRCLE
    x, y = geometry.to_sweref99tm(lon, lat)
    return {"shape": shape_kind, "lon": lon, "lat": lat, "sweref_x": x, "sweref_y": y, "radius_m": radius,
            "area": area, "min_lon": min_lon, "min_lat": min_lat, "max_lon": max_lon, "max_lat": max_lat}


def circle_bbox(lon: float, lat: float, radius_m: float) -> geometry.BBox:
    # A little wider than the circle: the exact test is done in SWEREF 99 TM metres afterwards.
    dlat = radius_m * 1.05 / METRES_PER_DEGREE_LAT
    dlon = radius_m * 1.05 / (METRES_PER_DEGREE_LAT * math.cos(math.radians(lat)))
    return (lon - dlon, lat - dlat, lon + dlon, lat + dlat)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput(_("Give the place a name."), field="name")
    if len(name) > MAX_NAME:
        raise InvalidInput(_("The name is too long (at most %(max)d characters).") % {"max": MAX_NAME}, field="name")
    return name


def create_place(membership: Membership, data: PlaceInput) -> Place:
    require_coordinator(membership, "place by a non-coordinator")
    values = {"name": _clean_name(data.name), "description": data.description.strip()[:2000],
              **_geometry_fields(membership, data)}
    try:
        with transaction.atomic():
            place = Place.objects.create(forum_id=membership.forum_id, created_by_id=membership.user_id, **values)
            audit.record(membership, AuditEvent.Action.CREATE, place, {"name": place.name, "shape": place.shape})
    except IntegrityError as exc:
        raise InvalidInput(_("The forum already has a place with that name."), field="name") from exc
    return place


def update_place(membership: Membership, place_id: int, data: PlaceInput) -> Place:
    require_coordinator(membership, "place by a non-coordinator")
    place = get_place(membership, place_id)
    values = {"name": _clean_name(data.name), "description": data.description.strip()[:2000],
              **_geometry_fields(membership, data)}
    diff = {k: [getattr(place, k), v] for k, v in values.items()
            if k in {"name", "description", "shape", "radius_m"} and getattr(place, k) != v}
    if values["area"] != place.area or values["lon"] != place.lon or values["lat"] != place.lat:
        diff["geometry"] = ["…", "…"]
    try:
        with transaction.atomic():
            Place.objects.filter(pk=place.pk).update(**values)
            if diff:
                audit.record(membership, AuditEvent.Action.UPDATE, place, diff)
    except IntegrityError as exc:
        raise InvalidInput(_("The forum already has a place with that name."), field="name") from exc
    place.refresh_from_db()
    return place


def delete_place(membership: Membership, place_id: int) -> None:
    """Remove a place. Its deviations stay; actions and agenda items keep their text but lose the link."""
    require_coordinator(membership, "place by a non-coordinator")
    place = get_place(membership, place_id)
    with transaction.atomic():
        audit.record(membership, AuditEvent.Action.DELETE, place, {"name": place.name})
        place.delete()


# --- Which deviations lie in a place --------------------------------------------------------------------

def contains(place: Place, lon: float, lat: float, sweref: tuple[float, float] | None = None) -> bool:
    if place.shape == Place.Shape.POLYGON and place.area:
        return spatial_index.point_in_polygon(place.area_json, lon, lat)
    x, y = sweref or geometry.to_sweref99tm(lon, lat)
    return (x - place.sweref_x) ** 2 + (y - place.sweref_y) ** 2 <= (place.radius_m or 0) ** 2


def deviations_at(place: Place, queryset: QuerySet[Deviation], *, selective: bool = True) -> QuerySet[Deviation]:
    """The deviations of `queryset` that lie in the place (on its edge counts as in it).

    `selective=False` says that `queryset` is already narrowed to a short period, so SQLite should read it
    by time rather than through the spatial index (see spatial_index.filter_bbox).
    """
    if place.shape == Place.Shape.POLYGON and place.area:
        return spatial_index.filter_in_polygon(queryset, place.area, place.bbox, selective=selective)
    # Distance in SWEREF 99 TM metres, in SQL on both backends.
    return spatial_index.filter_near(queryset, place.sweref_x, place.sweref_y, float(place.radius_m or 0),
                                     place.bbox, selective=selective)


def count_in_period(place: Place, queryset: QuerySet[Deviation], start: dt.datetime, end: dt.datetime) -> int:
    """Deviations at the place from `start` up to (not including) `end`."""
    in_period = queryset.filter(observed_at__gte=start, observed_at__lt=end)
    return deviations_at(place, in_period, selective=end - start > SHORT_PERIOD).count()


def places_containing(places: list[Place], lon: float, lat: float) -> list[Place]:
    sweref = geometry.to_sweref99tm(lon, lat)
    return [p for p in places if contains(p, lon, lat, sweref)]


def places_meeting(places: list[Place], drawn: dict[str, Any]) -> list[Place]:
    """The places a line or area meets: overlaps an area place, or comes within a circle's radius."""
    geom = shape(drawn)
    metric = geometry.sweref99tm_shape(geom)
    found = []
    for place in places:
        if place.shape == Place.Shape.POLYGON and place.area:
            if shape(place.area).intersects(geom):
                found.append(place)
        elif metric.distance(Point(place.sweref_x, place.sweref_y)) <= (place.radius_m or 0):
            found.append(place)
    return found


NEAR_M = 400  # a place within this distance describes a position ("near Farsta centrum")
COMPASS = ("N", "NO", "O", "SO", "S", "SV", "V", "NV")  # Swedish points of the compass
COMPASS_EN = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def describe_position(places: list[Place], lon: float, lat: float) -> str:
    """A position in words people know, from the forum's places: the place it lies in, "near" the nearest
    one, or how far and which way from it. Empty for a forum without places."""
    inside = places_containing(places, lon, lat)
    if inside:
        return ", ".join(p.name for p in inside)
    if not places:
        return ""
    x, y = geometry.to_sweref99tm(lon, lat)
    place = min(places, key=lambda p: (p.sweref_x - x) ** 2 + (p.sweref_y - y) ** 2)
    distance = math.hypot(place.sweref_x - x, place.sweref_y - y)
    if distance <= NEAR_M:
        return _("near %(place)s") % {"place": place.name}
    english = (translation.get_language() or "sv").startswith("en")
    bearing = math.degrees(math.atan2(x - place.sweref_x, y - place.sweref_y)) % 360
    direction = (COMPASS_EN if english else COMPASS)[int((bearing + 22.5) // 45) % 8]
    return _("%(distance)s m %(direction)s of %(place)s") % {
        "distance": f"{round(distance, -2):.0f}", "direction": direction, "place": place.name}


# --- A place's history ---------------------------------------------------------------------------------

@dataclass
class MonthTable:
    months: list[str]  # "2026-03", oldest first
    rows: list[tuple[str, str, list[int], int]]  # category key, name, count per month, total
    totals: list[int]


def counts_by_month(place: Place, queryset: QuerySet[Deviation], months: int = 12,
                    now: dt.datetime | None = None) -> MonthTable:
    """Deviations at the place per main category and calendar month (in the forum's time zone)."""
    tz = ZoneInfo(place.forum.timezone)
    local_now = (now or timezone.now()).astimezone(tz)
    keys: list[str] = []
    year, month = local_now.year, local_now.month
    for _i in range(months):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    keys.reverse()
    # Month boundaries in local time: the counting is done in the database, one column per month.
    bounds = [dt.datetime(int(k[:4]), int(k[5:]), 1, tzinfo=tz) for k in keys]
    last = bounds[-1]
    bounds.append(dt.datetime(last.year + last.month // 12, last.month % 12 + 1, 1, tzinfo=tz))
    per_month = {f"m{i}": Count("id", filter=Q(observed_at__gte=bounds[i], observed_at__lt=bounds[i + 1]))
                 for i in range(len(keys))}
    at_place = deviations_at(place, queryset.filter(observed_at__gte=bounds[0], observed_at__lt=bounds[-1]),
                             selective=months > 3)
    categories = {c.key: c for c in deviations.forum_categories(place.forum)}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    names: dict[str, str] = {}
    for row in at_place.values("category__parent__key", "category__key").annotate(**per_month).order_by():
        main = row["category__parent__key"] or row["category__key"]
        names[main] = categories[main].name
        for i, key in enumerate(keys):
            counts[main][key] += row[f"m{i}"]
    table_rows = sorted(
        ((key, names[key], [counts[key][m] for m in keys], sum(counts[key].values())) for key in counts),
        key=lambda row: (-row[3], row[1]))
    totals = [sum(row[2][i] for row in table_rows) for i in range(len(keys))]
    return MonthTable(months=keys, rows=table_rows, totals=totals)


# --- Suggesting places ------------------------------------------------------------------------------------

@dataclass
class Suggestion:
    lon: float
    lat: float
    radius_m: int
    count: int
    weeks: int
    name_hint: str
    categories: list[tuple[str, int]] = field(default_factory=list)
    first: dt.datetime | None = None
    last: dt.datetime | None = None


def suggest_places(membership: Membership, queryset: QuerySet[Deviation], *, radius_m: int = 150, days: int = 90,
                   min_count: int = 5, min_weeks: int = 3, limit: int = 10,
                   now: dt.datetime | None = None) -> list[Suggestion]:
    """Where deviations recur but no place is drawn yet.

    A cluster is the deviations within `radius_m` of one of them, in the last `days`, outside every
    existing place. It is suggested when it has at least `min_count` deviations spread over at least
    `min_weeks` different weeks, so one busy evening does not make a place. Clusters are taken greedily,
    densest first, and a deviation belongs to one cluster at most; the `limit` densest are returned.
    A cluster whose circle would overlap an existing place is left out: the forum already follows
    that spot, and a second place beside it would split its deviations between the two.
    """
    if not MIN_RADIUS <= radius_m <= MAX_RADIUS:
        raise InvalidInput(_("The radius must be between %(min)d and %(max)d metres.") % {
            "min": MIN_RADIUS, "max": MAX_RADIUS}, field="radius_m")
    if not 7 <= days <= 730:
        raise InvalidInput(_("The period must be between 7 and 730 days."), field="days")
    if not 2 <= min_count <= 1000:
        raise InvalidInput(_("A cluster needs at least 2 deviations."), field="min_count")
    if not 1 <= min_weeks <= 104:
        raise InvalidInput(_("The number of weeks must be between 1 and 104."), field="min_weeks")
    since = (now or timezone.now()) - dt.timedelta(days=days)
    tz = ZoneInfo(membership.forum.timezone)
    places = list(forum_places(membership))
    rows = [
        row for row in queryset.filter(observed_at__gte=since).order_by("pk").values_list(
            "pk", "lon", "lat", "sweref_x", "sweref_y", "observed_at", "place_name",
            "category__parent__name_sv", "category__name_sv")
        if not any(contains(p, row[1], row[2], (row[3], row[4])) for p in places)
    ]
    if not rows:
        return []
    xs = np.array([row[3] for row in rows])
    ys = np.array([row[4] for row in rows])
    # Points hashed into cells one radius wide: a point's neighbours are in its own or the adjacent cells.
    cells: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, key in enumerate(zip((xs // radius_m).astype(int), (ys // radius_m).astype(int), strict=True)):
        cells[(int(key[0]), int(key[1]))].append(i)
    r2 = radius_m * radius_m
    neighbours: list[np.ndarray] = [np.empty(0, dtype=int)] * len(rows)
    for (cx, cy), members_of_cell in cells.items():
        inside = np.array(members_of_cell)
        around = np.array([j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in cells.get((cx + dx, cy + dy), ())])
        # Distances from each point of the cell to each point around it, at once.
        close = (xs[inside, None] - xs[around]) ** 2 + (ys[inside, None] - ys[around]) ** 2 <= r2
        for row_index, i in enumerate(inside):
            neighbours[i] = around[close[row_index]]
    taken = np.zeros(len(rows), dtype=bool)
    suggestions: list[Suggestion] = []
    for i in sorted(range(len(rows)), key=lambda k: (-len(neighbours[k]), rows[k][0])):
        if taken[i]:
            continue
        members = neighbours[i][~taken[neighbours[i]]]
        if len(members) < min_count:
            continue
        taken[members] = True
        weeks = {rows[j][5].astimezone(tz).isocalendar()[:2] for j in members}
        if len(weeks) < min_weeks:
            continue
        centre = (float(xs[members].mean()), float(ys[members].mean()))
        if any(_overlaps(p, centre, radius_m) for p in places):
            continue
        names = Counter(rows[j][6].strip() for j in members if rows[j][6].strip())
        categories = Counter(rows[j][7] or rows[j][8] for j in members)
        times = [rows[j][5] for j in members]
        suggestions.append(Suggestion(
            lon=round(sum(rows[j][1] for j in members) / len(members), 6),
            lat=round(sum(rows[j][2] for j in members) / len(members), 6),
            radius_m=radius_m, count=len(members), weeks=len(weeks),
            name_hint=names.most_common(1)[0][0] if names else "",
            categories=categories.most_common(3), first=min(times), last=max(times),
        ))
        if len(suggestions) == limit:
            break
    return suggestions


def _overlaps(place: Place, centre: tuple[float, float], radius_m: float) -> bool:
    """Whether a circle (centre in SWEREF 99 TM metres) overlaps the place."""
    if place.shape == Place.Shape.POLYGON and place.area:
        return bool(geometry.sweref99tm_shape(shape(place.area)).distance(Point(centre)) < radius_m)
    return math.dist(centre, (place.sweref_x, place.sweref_y)) < radius_m + (place.radius_m or 0)


def outline(place: Place, corners: int = 48) -> dict[str, Any]:
    """The place as a GeoJSON Polygon; a circle is drawn as a polygon with `corners` corners."""
    if place.shape == Place.Shape.POLYGON and place.area:
        return place.area
    radius = float(place.radius_m or 0)
    dlat = radius / METRES_PER_DEGREE_LAT
    dlon = radius / (METRES_PER_DEGREE_LAT * math.cos(math.radians(place.lat)))
    ring = [[round(place.lon + dlon * math.cos(2 * math.pi * k / corners), 6),
             round(place.lat + dlat * math.sin(2 * math.pi * k / corners), 6)] for k in range(corners)]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def as_feature(place: Place) -> dict[str, Any]:
    return {"type": "Feature", "id": place.pk, "geometry": outline(place),
            "properties": {"id": place.pk, "name": place.name, "shape": place.shape, "radius_m": place.radius_m,
                           "centre": [place.lon, place.lat], "bbox": list(place.bbox)}}
