"""API: the forum's patterns as JSON, for the same filters as the map (every figure from what you may see)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import h3
from django.http import HttpRequest
from ninja import Field, Query, Router

from lagesbild.analysis import services
from lagesbild.analysis.hotspots import Hotspots
from lagesbild.api import member
from lagesbild.deviations.api import DeviationQuery, filter_of
from lagesbild.deviations.services import DeviationFilter
from lagesbild.forums.models import Membership

router = Router(tags=["patterns"])


class PatternQuery(DeviationQuery):
    resolution: int | None = Field(None, description="H3 resolution: 8, 9 or 10 (default 9, or from zoom)")
    zoom: float | None = Field(None, description="The map's zoom, to choose the resolution")


def _prepare(request: HttpRequest, forum: str, params: PatternQuery) -> tuple[Membership, DeviationFilter, int]:
    membership = member(request, forum)
    resolution = params.resolution or (services.resolution_for_zoom(params.zoom) if params.zoom is not None
                                       else services.DEFAULT_RESOLUTION)
    return membership, filter_of(params, membership.forum), services.check_resolution(resolution)


@router.get("/{forum}/patterns/hexagons", response=dict[str, Any],
            summary="Deviations per H3 hexagon as GeoJSON polygons (for the map's hexagon layer)")
def hexagons(request: HttpRequest, forum: str, params: Query[PatternQuery]) -> dict[str, Any]:
    membership, flt, resolution = _prepare(request, forum, params)
    counts = services.hexagon_counts(services.filtered(membership, flt), resolution)
    return {"type": "FeatureCollection", "resolution": resolution, "numberMatched": sum(counts.values()),
            "features": services.hexagon_features({c: {"count": n} for c, n in counts.items()})}


def hotspots_out(result: Hotspots) -> dict[str, Any]:
    return {
        "type": "FeatureCollection", "resolution": result.resolution, "verdict": result.verdict,
        "total": result.total, "summary": services.hotspot_summary(result),
        "features": services.hexagon_features({c.cell: {
            "count": c.count, "z": round(c.z, 4), "p": round(c.p, 6), "kind": c.kind or None,
            "confidence": c.confidence} for c in result.cells}),
    }


@router.get("/{forum}/patterns/hotspots", response=dict[str, Any],
            summary="Getis-Ord Gi* hot and cold spots over hexagons, with a false-discovery-rate correction")
def hotspots(request: HttpRequest, forum: str, params: Query[PatternQuery]) -> dict[str, Any]:
    membership, flt, resolution = _prepare(request, forum, params)
    return hotspots_out(services.hotspots(membership, services.filtered(membership, flt), resolution))


@router.get("/{forum}/patterns/week-hours", response=dict[str, Any],
            summary="Deviations per weekday (Monday first) and hour, in the forum's local time")
def week_hours(request: HttpRequest, forum: str, params: Query[PatternQuery]) -> dict[str, Any]:
    membership, flt, _resolution = _prepare(request, forum, params)
    grid = services.week_hour_grid(services.filtered(membership, flt))
    return {"timezone": membership.forum.timezone, "weekdays": list(range(7)), "grid": grid,
            "total": sum(map(sum, grid))}


class TrendQuery(PatternQuery):
    months: int = Field(12, ge=1, le=36, description="How many months, up to the filter's end")


@router.get("/{forum}/patterns/trend", response=dict[str, Any],
            summary="Deviations per main category and month, against the same months a year earlier")
def trend(request: HttpRequest, forum: str, params: Query[TrendQuery]) -> dict[str, Any]:
    membership, flt, _resolution = _prepare(request, forum, params)
    result = services.monthly_trend(membership, flt, params.months)
    return {"months": [f"{m // 100}-{m % 100:02d}" for m in result.months],
            "categories": [{"category": k, "name": n, "counts": c, "lastYear": b} for k, n, c, b in result.rows],
            "totals": result.totals, "totalsLastYear": result.totals_before}


class ActorQuery(PatternQuery):
    by: str = Field("organisation", description="organisation or kind")


@router.get("/{forum}/patterns/actors", response=dict[str, Any],
            summary="Who reports what: organisations by main category, and hexagons several organisations report")
def actors(request: HttpRequest, forum: str, params: Query[ActorQuery]) -> dict[str, Any]:
    membership, flt, resolution = _prepare(request, forum, params)
    result = services.actors(membership, services.filtered(membership, flt), params.by, resolution=resolution)
    return {"by": result.by, "categories": [{"category": k, "name": n} for k, n in result.columns],
            "rows": [{"name": who, "counts": counts, "total": total} for who, counts, total in result.rows],
            "overlap": [{"cell": h3.int_to_str(c), "organisations": o, "count": n, "names": names}
                        for c, o, n, names in result.overlap]}


class RepeatQuery(PatternQuery):
    weeks: int = Field(12, description="Look back this many weeks (2 to 104)")
    min_weeks: int = Field(4, description="With deviations in at least this many of them")


@router.get("/{forum}/patterns/repeat-places", response=list[dict[str, Any]],
            summary="Hexagons with deviations in many of the last weeks")
def repeat(request: HttpRequest, forum: str, params: Query[RepeatQuery]) -> list[dict[str, Any]]:
    membership, flt, resolution = _prepare(request, forum, params)
    found = services.repeat_places(membership, services.filtered(membership, flt), params.weeks,
                                   params.min_weeks, resolution)
    return [{"cell": h3.int_to_str(r.cell), "weeks": r.weeks, "ofWeeks": r.of_weeks, "count": r.count,
             "place": r.place or None} for r in found]


class CompareQuery(PatternQuery):
    against: str = Field("previous", description="previous or last_year")


@router.get("/{forum}/patterns/compare", response=dict[str, Any],
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
