"""API: the forum's patterns as JSON, for the same filters as the map (every figure from what you may see)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import h3
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from lagesbild.analysis import services
from lagesbild.analysis.hotspots import Hotspots
from lagesbild.api import NonNegativeInt, PolygonGeometry, answers, member
from lagesbild.deviations.api import DeviationQuery, filter_of
from lagesbild.deviations.services import DeviationFilter
from lagesbild.forums.models import Membership

router = Router(tags=["patterns"])


class PatternQuery(DeviationQuery):
    resolution: NonNegativeInt | None = Field(None, description="H3 resolution: 8, 9 or 10 (default 9, or from zoom)")
    zoom: float | None = Field(None, ge=0, le=24, allow_inf_nan=False,
                               description="The map's zoom, to choose the resolution")


class CountProperties(Schema):
    cell: str = Field(description="The H3 cell id")
    count: int


class HexagonFeature(Schema):
    type: str
    id: str
    geometry: PolygonGeometry
    properties: CountProperties


class HexagonsOut(Schema):
    type: str = Field(description="FeatureCollection")
    resolution: int
    numberMatched: int = Field(description="How many deviations match; a line or area counts in every hexagon "
                                           "it crosses, so the counts may add up to more")
    features: list[HexagonFeature]


class HotspotProperties(Schema):
    cell: str
    count: int = Field(description="Deviations in the hexagon")
    observed: int = Field(description="Deviations in the hexagon and its neighbours")
    expected: float = Field(description="What the neighbourhood would hold with no pattern")
    z: float = Field(description="Gi* z-score")
    p: float = Field(description="Exact two-sided p-value")
    kind: str | None = Field(description="hot, cold, or null")
    fdr: float | None = Field(description="The strictest false discovery rate it is marked at: 0.01, 0.05 or 0.1")


class HotspotFeature(Schema):
    type: str
    id: str
    geometry: PolygonGeometry
    properties: HotspotProperties


class HotspotsOut(Schema):
    type: str
    resolution: int = Field(description="The hexagons tested; larger than asked for when the data are sparse")
    requestedResolution: int | None
    verdict: str = Field(description="too_few, no_variation or tested")
    total: int
    summary: str
    features: list[HotspotFeature]


class WeekHoursOut(Schema):
    timezone: str
    weekdays: list[int]
    grid: list[list[int]] = Field(description="Seven rows (Monday first) of 24 hours")
    total: int


class TrendRow(Schema):
    category: str
    name: str
    counts: list[int]
    lastYear: list[int]


class TrendOut(Schema):
    months: list[str]
    categories: list[TrendRow]
    totals: list[int]
    totalsLastYear: list[int]


class KeyName(Schema):
    category: str
    name: str


class ActorRow(Schema):
    name: str
    counts: list[int]
    total: int


class OverlapRow(Schema):
    cell: str
    organisations: int
    count: int
    names: list[str]


class ActorsOut(Schema):
    by: str
    categories: list[KeyName]
    rows: list[ActorRow]
    overlap: list[OverlapRow]


class RepeatOut(Schema):
    cell: str
    weeks: int
    ofWeeks: int
    count: int
    place: str | None


class Span(Schema):
    start: dt.datetime = Field(alias="from")
    end: dt.datetime = Field(alias="to")


class Totals(Schema):
    now: int
    other: int


class CategoryComparison(Schema):
    category: str
    name: str
    now: int
    other: int


class ChangeProperties(Schema):
    cell: str
    now: int
    other: int
    change: int


class ChangeFeature(Schema):
    type: str
    id: str
    geometry: PolygonGeometry
    properties: ChangeProperties


class CompareOut(Schema):
    against: str
    period: Span
    other: Span
    total: Totals
    categories: list[CategoryComparison]
    features: list[ChangeFeature]


def _prepare(request: HttpRequest, forum: str, params: PatternQuery) -> tuple[Membership, DeviationFilter, int]:
    membership = member(request, forum)
    resolution = params.resolution or (services.resolution_for_zoom(params.zoom) if params.zoom is not None
                                       else services.DEFAULT_RESOLUTION)
    return membership, filter_of(params, membership.forum, membership), services.check_resolution(resolution)


@router.get("/{forum}/patterns/hexagons", response=answers(HexagonsOut),
            summary="Deviations per H3 hexagon as GeoJSON polygons (for the map's hexagon layer)")
def hexagons(request: HttpRequest, forum: str, params: Query[PatternQuery]) -> dict[str, Any]:
    membership, flt, resolution = _prepare(request, forum, params)
    queryset = services.filtered(membership, flt)
    counts = services.hexagon_counts(queryset, resolution)
    # The deviations, not the sum of the counts: a line or area counts in each hexagon it crosses.
    return {"type": "FeatureCollection", "resolution": resolution, "numberMatched": queryset.count(),
            "features": services.hexagon_features({c: {"count": n} for c, n in counts.items()})}


def hotspots_out(result: Hotspots) -> dict[str, Any]:
    return {
        "type": "FeatureCollection", "resolution": result.resolution, "verdict": result.verdict,
        "total": result.total, "summary": services.hotspot_summary(result),
        "requestedResolution": result.requested_resolution,
        "features": services.hexagon_features({c.cell: {
            "count": c.count, "observed": c.observed, "expected": round(c.expected, 4), "z": round(c.z, 4),
            "p": c.p, "kind": c.kind or None, "fdr": c.fdr} for c in result.cells}),
    }


@router.get("/{forum}/patterns/hotspots", response=answers(HotspotsOut),
            summary="Hot and cold spots over hexagons: exact tests of each neighbourhood, at a false discovery rate")
def hotspots(request: HttpRequest, forum: str, params: Query[PatternQuery]) -> dict[str, Any]:
    membership, flt, resolution = _prepare(request, forum, params)
    return hotspots_out(services.hotspots(membership, services.filtered(membership, flt), resolution))


@router.get("/{forum}/patterns/week-hours", response=answers(WeekHoursOut),
            summary="Deviations per weekday (Monday first) and hour, in the forum's local time")
def week_hours(request: HttpRequest, forum: str, params: Query[PatternQuery]) -> dict[str, Any]:
    membership, flt, _resolution = _prepare(request, forum, params)
    grid = services.week_hour_grid(services.filtered(membership, flt))
    return {"timezone": membership.forum.timezone, "weekdays": list(range(7)), "grid": grid,
            "total": sum(map(sum, grid))}


class TrendQuery(PatternQuery):
    months: int = Field(12, ge=1, le=36, description="How many months, up to the filter's end")


@router.get("/{forum}/patterns/trend", response=answers(TrendOut),
            summary="Deviations per main category and month, against the same months a year earlier")
def trend(request: HttpRequest, forum: str, params: Query[TrendQuery]) -> dict[str, Any]:
    membership, flt, _resolution = _prepare(request, forum, params)
    result = services.monthly_trend(membership, flt, params.months)
    return {"months": [f"{m // 100}-{m % 100:02d}" for m in result.months],
            "categories": [{"category": k, "name": n, "counts": c, "lastYear": b} for k, n, c, b in result.rows],
            "totals": result.totals, "totalsLastYear": result.totals_before}


class ActorQuery(PatternQuery):
    by: str = Field("organisation", description="organisation or kind")


@router.get("/{forum}/patterns/actors", response=answers(ActorsOut),
            summary="Who reports what: organisations by main category, and hexagons several organisations report")
def actors(request: HttpRequest, forum: str, params: Query[ActorQuery]) -> dict[str, Any]:
    membership, flt, resolution = _prepare(request, forum, params)
    result = services.actors(membership, services.filtered(membership, flt), params.by, resolution=resolution)
    return {"by": result.by, "categories": [{"category": k, "name": n} for k, n in result.columns],
            "rows": [{"name": who, "counts": counts, "total": total} for who, counts, total in result.rows],
            "overlap": [{"cell": h3.int_to_str(c), "organisations": o, "count": n, "names": names}
                        for c, o, n, names in result.overlap]}


class FieldValueCount(Schema):
    value: str
    count: int


class FieldCountsOut(Schema):
    key: str
    label: str
    kind: str
    filled: int = Field(description="Deviations of the filter with it filled in")
    values: list[FieldValueCount] = Field(description="Yes/no and choices: how many of each")
    total: float | None = Field(description="Numbers: their sum")
    mean: float | None = Field(description="Numbers: their mean")


@router.get("/{forum}/patterns/fields", response=answers(list[FieldCountsOut]),
            summary="The forum's own fields: what the filter's deviations hold")
def own_fields(request: HttpRequest, forum: str, params: Query[PatternQuery]) -> list[dict[str, Any]]:
    membership, flt, _resolution = _prepare(request, forum, params)
    return [{"key": f.key, "label": f.label, "kind": f.kind, "filled": f.filled, "total": f.total, "mean": f.mean,
             "values": [{"value": v, "count": n} for v, n in f.values]}
            for f in services.own_fields(membership, services.filtered(membership, flt))]


class RepeatQuery(PatternQuery):
    weeks: NonNegativeInt = Field(12, description="Look back this many weeks (2 to 104)")
    min_weeks: NonNegativeInt = Field(4, description="With deviations in at least this many of them")


@router.get("/{forum}/patterns/repeat-places", response=answers(list[RepeatOut]),
            summary="Hexagons with deviations in many of the last weeks")
def repeat(request: HttpRequest, forum: str, params: Query[RepeatQuery]) -> list[dict[str, Any]]:
    membership, flt, resolution = _prepare(request, forum, params)
    found = services.repeat_places(membership, services.filtered(membership, flt), params.weeks,
                                   params.min_weeks, resolution)
    return [{"cell": h3.int_to_str(r.cell), "weeks": r.weeks, "ofWeeks": r.of_weeks, "count": r.count,
             "place": r.place or None} for r in found]


class CompareQuery(PatternQuery):
    against: str = Field("previous", description="previous or last_year")


@router.get("/{forum}/patterns/compare", response=answers(CompareOut),
            summary="The period against the previous one or the same period last year, per category and hexagon")
def compare(request: HttpRequest, forum: str, params: Query[CompareQuery]) -> dict[str, Any]:
    membership, flt, resolution = _prepare(request, forum, params)
    result = services.compare_periods(membership, flt, params.against, resolution)

    def span(period: tuple[dt.datetime, dt.datetime]) -> dict[str, dt.datetime]:
        return {"from": period[0], "to": period[1]}

    return {"against": result.against, "period": span(result.period), "other": span(result.other),
            "total": {"now": result.total[0], "other": result.total[1]},
            "categories": [{"category": k, "name": n, "now": a, "other": b} for k, n, a, b in result.categories],
            "features": services.hexagon_features({c: {"now": a, "other": b, "change": a - b}
                                                   for c, (a, b) in result.cells.items()})}
