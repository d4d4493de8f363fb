"""The patterns page (Mönster): every figure with a table beside it and its numbers as CSV."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import h3
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from lagesbild import charts, geometry, staticmap
from lagesbild.analysis import services
from lagesbild.csvfile import rows_as_csv
from lagesbild.deviations import services as deviations
from lagesbild.deviations.services import DeviationFilter
from lagesbild.errors import DomainError, InvalidInput
from lagesbild.forums.models import Membership
from lagesbild.pages import any_member
from lagesbild.places import services as places

DEFAULT_PERIOD = services.DEFAULT_PERIOD
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SEQUENTIAL = ("#fff3c4", "#fdcf7f", "#f59d4f", "#d95f27", "#a12d11")
# By the strictest false discovery rate a hexagon is marked at.
HOT = {0.01: "#b2182b", 0.05: "#e0604a", 0.10: "#f4a582"}
COLD = {0.01: "#2166ac", 0.05: "#4d93c6", 0.10: "#92c5de"}


def filter_from(request: HttpRequest, membership: Membership) -> tuple[DeviationFilter, dict[str, Any]]:
    """The map's filter from the query string: period, from, to, category, organisation, status, q."""
    data: QueryDict = request.GET
    period = data.get("period") or DEFAULT_PERIOD
    flt = services.map_filter(membership.forum, data)
    form = {"period": period, "from": data.get("from", ""), "to": data.get("to", ""),
            "category": set(data.getlist("category")), "organisation": set(data.getlist("organisation")),
            "status": data.getlist("status"), "q": data.get("q", ""),
            "resolution": data.get("resolution", str(services.DEFAULT_RESOLUTION)),
            "against": data.get("against", "previous"), "by": data.get("by", "organisation")}
    return flt, form


def _resolution(form: dict[str, Any]) -> int:
    try:
        return services.check_resolution(int(form["resolution"]))
    except ValueError as exc:
        raise InvalidInput(_("The hexagon resolution must be one of %(choices)s.") % {"choices": "8, 9, 10"},
                           field="resolution") from exc


def _shade(value: int, top: int) -> str:
    if value <= 0 or top <= 0:
        return "#f4f1ea"
    return SEQUENTIAL[min(len(SEQUENTIAL) - 1, int((value / top) * len(SEQUENTIAL) - 1e-9))]


def _hex_map(membership: Membership, title: str, cells: dict[int, tuple[str, str]], width: int = 640,
             height: int = 400) -> str:
    """An SVG map of hexagons over the forum's area; `cells` maps a hexagon to its colour and tooltip."""
    bounds = geometry.area_bounds(membership.forum.area)
    if bounds is None and cells:
        rings = [services.hexagon_ring(c) for c in cells]
        lons = [p[0] for r in rings for p in r]
        lats = [p[1] for r in rings for p in r]
        bounds = (min(lons), min(lats), max(lons), max(lats))
    if bounds is None:
        return ""
    frame = staticmap.Frame(staticmap.padded(bounds, 0.03), width, height)
    return staticmap.svg(frame, title=title, area=membership.forum.area,
                         outlines=[(p.name, places.outline(p, 32)) for p in places.forum_places(membership)],
                         shapes=[(services.hexagon_ring(c), fill, tip) for c, (fill, tip) in cells.items()])


def cell_link(slug: str, map_query: str, cell: int) -> str:
    """The map on this hexagon, with the same filter."""
    ring = services.hexagon_ring(cell)
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    bbox = staticmap.padded((min(lons), min(lats), max(lons), max(lats)), 0.5, 0.0)
    return f"{reverse('map', kwargs={'forum': slug})}?{map_query}&bbox=" + ",".join(f"{v:.5f}" for v in bbox)


def patterns_page(request: HttpRequest, forum: str) -> HttpResponse:
    membership = any_member(request, forum)
    if isinstance(membership, HttpResponse):
        return membership
    try:
        flt, form = filter_from(request, membership)
        map_query = _map_query(request.GET)
        context = figures(membership, flt, form,
                          lambda cell: cell_link(membership.forum.slug, map_query, cell))
        status = 200
    except DomainError as exc:
        flt, form = DeviationFilter(), {"period": DEFAULT_PERIOD, "category": set(), "organisation": set(),
                                        "resolution": "9", "against": "previous", "by": "organisation"}
        context = {"errors": {exc.field or "__all__": exc.message}}
        status = exc.status
    categories = [c for c in deviations.forum_categories(membership.forum) if c.parent_id is None]
    return render(request, "analysis/patterns.html", {
        "forum": membership.forum, "membership": membership, "form": form, "categories": categories,
        "organisations": membership.forum.organisations.all(), "query": request.GET.urlencode(),
        "map_query": _map_query(request.GET), **context}, status=status)


def _map_query(data: QueryDict) -> str:
    """The same filter for the map, which does not know the patterns page's own choices."""
    copy = data.copy()
    for name in ("resolution", "against", "by"):
        copy.pop(name, None)
    if "period" not in copy:
        copy["period"] = DEFAULT_PERIOD
    return copy.urlencode()


def figures(membership: Membership, flt: DeviationFilter, form: dict[str, Any], link: Callable[[int], str]
            ) -> dict[str, Any]:
    """Every figure of the page; `link` gives a hexagon's link to the map. Hexagons are named, never shown by id."""
    resolution = _resolution(form)
    queryset = services.filtered(membership, flt)
    total = queryset.count()
    counts = services.hexagon_counts(queryset, resolution)
    top = max(counts.values(), default=0)
    busiest = sorted(counts.items(), key=lambda kv: -kv[1])[:10]

    spots = services.hotspots(membership, queryset, resolution)
    significant = sorted((c for c in spots.cells if c.kind), key=lambda c: (c.fdr or 1, c.p))
    repeat = services.repeat_places(membership, _without_period(membership, flt), resolution=resolution)[:10]
    names = services.hexagon_names(membership, queryset, [c for c, _n in busiest] + [r.cell for r in repeat],
                                   resolution)
    names.update(services.hexagon_names(membership, queryset, [c.cell for c in significant], spots.resolution))
    count_map = _hex_map(membership, _("Deviations per hexagon"), {
        c: (_shade(n, top), f"{names.get(c) or ''} {_('%(count)d deviations') % {'count': n}}".strip())
        for c, n in counts.items()})
    hot_map = _hex_map(membership, _("Hot and cold spots"), {
        c.cell: ((HOT if c.kind == "hot" else COLD)[c.fdr or 0.10],
                 _("%(kind)s, false discovery rate %(fdr)s %%, %(count)d deviations") % {
                     "kind": _("hot spot") if c.kind == "hot" else _("cold spot"),
                     "fdr": _percent(c.fdr), "count": c.count}) for c in significant})

    grid = services.week_hour_grid(queryset)
    grid_top = max((max(row) for row in grid), default=0)
    trend = services.monthly_trend(membership, flt)
    trend_months = [_month_label(m) for m in trend.months]
    actors = services.actors(membership, queryset, form["by"], resolution=resolution)
    small_maps = []
    for who, per_cell in actors.maps:
        most = max(per_cell.values(), default=0)
        small_maps.append((who, _hex_map(membership, _("Deviations reported by %(name)s") % {"name": who}, {
            c: (_shade(n, most), str(n)) for c, n in per_cell.items()}, 300, 200), sum(per_cell.values())))
    overlap_names = services.hexagon_names(membership, queryset, [row[0] for row in actors.overlap], resolution)
    comparison = services.compare_periods(membership, flt, form["against"], resolution)
    change_top = max((abs(a - b) for a, b in comparison.cells.values()), default=0)
    change_map = _hex_map(membership, _("Change per hexagon"), {
        c: (_change_colour(a - b, change_top), _("%(now)d now, %(other)d then") % {"now": a, "other": b})
        for c, (a, b) in comparison.cells.items() if a != b})
    return {
        "total": total, "resolution": resolution, "count_map": count_map, "spots": spots, "hot_map": hot_map,
        "busiest": [(names.get(c, ""), n, link(c)) for c, n in busiest],
        "significant": [(c, names.get(c.cell, ""), link(c.cell), _percent(c.fdr)) for c in significant],
        # The lists name each place once (several hexagons often make up one square), strongest first.
        "significant_places": _first_of_each(
            [(c, names.get(c.cell, ""), link(c.cell), _percent(c.fdr)) for c in significant],
            key=lambda row: (row[1], row[0].kind)),
        "hotspot_summary": services.hotspot_summary(spots),
        "grid": [(_(WEEKDAYS[d]), [(n, _shade(n, grid_top), charts.contrast_ink(_shade(n, grid_top)))
                                   for n in grid[d]], sum(grid[d])) for d in range(7)],
        "busiest_times": _busiest_times(grid),
        "hours": range(24), "trend": trend, "trend_months": trend_months,
        "trend_chart": charts.line_chart(_("Deviations per month, this year and the year before"), trend_months, [
            charts.Series(_("The last 12 months"), trend.totals, "#0b5cad"),
            charts.Series(_("The same months a year earlier"), trend.totals_before, "#8a939c", dashed=True)]),
        "actors": actors, "small_maps": small_maps,
        "actors_chart": charts.bar_chart(_("Deviations per reporting organisation"),
                                         [(who, n, "#0b5cad") for who, _counts, n in actors.rows[:12]]),
        "repeat": [(r, names.get(r.cell, ""), link(r.cell)) for r in repeat],
        "overlap": [(overlap_names.get(cell, ""), orgs, n, who, link(cell)) for cell, orgs, n, who in actors.overlap],
        "comparison": comparison, "change_map": change_map,
        "own_fields": services.own_fields(membership, queryset),
        "compare_rows": [(n, a, b, a - b) for _k, n, a, b in comparison.categories],
        "period_label": _period_label(membership, comparison.period),
        "other_label": _period_label(membership, comparison.other),
    }


def _first_of_each(rows: list[Any], key: Callable[[Any], Any]) -> list[Any]:
    seen: set[Any] = set()
    kept = []
    for row in rows:
        if key(row) not in seen:
            seen.add(key(row))
            kept.append(row)
    return kept


def _busiest_times(grid: list[list[int]]) -> list[tuple[str, str, int]]:
    """The three busiest weekday-and-hour slots, in words."""
    slots = sorted(((n, d, h) for d, row in enumerate(grid) for h, n in enumerate(row) if n), reverse=True)[:3]
    return [(_(WEEKDAYS[d]), f"{h:02d}\u2013{(h + 1) % 24:02d}", n) for n, d, h in slots]


def _without_period(membership: Membership, flt: DeviationFilter) -> Any:
    """Repeat places look back over their own weeks, whatever the period."""
    return services.filtered(membership, DeviationFilter(categories=flt.categories, organisations=flt.organisations,
                                                         statuses=flt.statuses, q=flt.q))


def _percent(fraction: float | None) -> str:
    return "" if fraction is None else f"{fraction * 100:g}"


def _change_colour(change: int, top: int) -> str:
    if top == 0 or change == 0:
        return "#f4f1ea"
    strength = min(2, int(abs(change) / top * 3 - 1e-9))
    return (("#fddbc7", "#ef8a62", "#b2182b") if change > 0 else ("#d1e5f0", "#67a9cf", "#2166ac"))[strength]


def _month_label(month: int) -> str:
    return date_format(dt.date(month // 100, month % 100, 1), "M Y")


def _period_label(membership: Membership, period: tuple[dt.datetime, dt.datetime]) -> str:
    from lagesbild.meetings.services import local_date

    return f"{local_date(membership.forum, period[0])} \u2013 {local_date(membership.forum, period[1])}"


# --- CSV -------------------------------------------------------------------------------------------------------

FIGURES = ("hexagons", "hotspots", "week-hours", "trend", "actors", "overlap", "repeat-places", "compare")


def pattern_csv(request: HttpRequest, forum: str, figure: str) -> HttpResponse:
    membership = any_member(request, forum)
    if isinstance(membership, HttpResponse):
        return membership
    if figure not in FIGURES:
        return render(request, "404.html", {"message": _("No such figure.")}, status=404)
    try:
        flt, form = filter_from(request, membership)
        header, rows = csv_rows(membership, flt, form, figure)
    except DomainError as exc:
        return render(request, "403.html", {"message": exc.message}, status=exc.status)
    response = HttpResponse(rows_as_csv(header, rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="{figure}-{membership.forum.slug}-{stamp}.csv"'
    return response


def csv_rows(membership: Membership, flt: DeviationFilter, form: dict[str, Any], figure: str
             ) -> tuple[list[str], list[list[Any]]]:
    resolution = _resolution(form)
    queryset = services.filtered(membership, flt)
    # Each hexagon by its name and by its H3 id (for joining with GIS data).
    if figure == "hexagons":
        counts = services.hexagon_counts(queryset, resolution)
        names = services.hexagon_names(membership, queryset, list(counts), resolution)
        return [_("Place"), _("Hexagon"), _("Deviations")], [[names[c], h3.int_to_str(c), n]
                                                            for c, n in sorted(counts.items())]
    if figure == "hotspots":
        spots = services.hotspots(membership, queryset, resolution)
        marked = [c.cell for c in spots.cells if c.kind]
        names = services.hexagon_names(membership, queryset, marked, spots.resolution)
        return ([_("Place"), _("Hexagon"), _("Deviations"), _("In the neighbourhood"),
                 _("Expected in the neighbourhood"), "z", "p", _("Kind"), _("False discovery rate (%)")],
                [[names.get(c.cell, ""), h3.int_to_str(c.cell), c.count, c.observed, round(c.expected, 3),
                  round(c.z, 4), c.p, {"hot": _("hot spot"), "cold": _("cold spot")}.get(c.kind, ""),
                  _percent(c.fdr)] for c in spots.cells])
    if figure == "week-hours":
        grid = services.week_hour_grid(queryset)
        return [_("Weekday"), *[f"{h:02d}" for h in range(24)]], [[_(WEEKDAYS[d]), *grid[d]] for d in range(7)]
    if figure == "trend":
        trend = services.monthly_trend(membership, flt)
        months = [f"{m // 100}-{m % 100:02d}" for m in trend.months]
        return ([_("Category"), _("Year"), *months],
                [row for _k, name, now, before in trend.rows
                 for row in ([name, _("this year"), *now], [name, _("the year before"), *before])])
    if figure in {"actors", "overlap"}:
        actors = services.actors(membership, queryset, form["by"], resolution=resolution)
        if figure == "actors":
            return ([_("Organisation"), *[n for _k, n in actors.columns], _("Total")],
                    [[who, *counts, total] for who, counts, total in actors.rows])
        places = services.hexagon_names(membership, queryset, [row[0] for row in actors.overlap], resolution)
        return ([_("Place"), _("Hexagon"), _("Organisations"), _("Deviations"), _("Reported by")],
                [[places[c], h3.int_to_str(c), o, n, ", ".join(names)] for c, o, n, names in actors.overlap])
    if figure == "repeat-places":
        found = services.repeat_places(membership, _without_period(membership, flt), resolution=resolution)
        names = services.hexagon_names(membership, queryset, [r.cell for r in found], resolution)
        return ([_("Place"), _("Hexagon"), _("Weeks with deviations"), _("Of weeks"), _("Deviations")],
                [[names[r.cell], h3.int_to_str(r.cell), r.weeks, r.of_weeks, r.count] for r in found])
    comparison = services.compare_periods(membership, flt, form["against"], resolution)
    return ([_("Category"), _("This period"), _("The other period"), _("Difference")],
            [[n, a, b, a - b] for _k, n, a, b in comparison.categories])
