"""The forum's patterns: hexagon counts, hotspots, when things happen, the actors' perspectives, repeat
places and period comparisons.

Every figure starts from `deviations.services.visible_deviations` and the map's filter, so a member's
figures count only what that member may see. The grouping is done in SQL on columns stored with each
deviation (its H3 hexagons, its local weekday, hour and month: see deviations/derived.py).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import h3
from django.db.models import Count, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild.analysis.hotspots import MIN_DEVIATIONS, Hotspots, find_hotspots
from lagesbild.deviations import services as deviations
from lagesbild.deviations.derived import H3_RESOLUTIONS
from lagesbild.deviations.models import Deviation
from lagesbild.errors import InvalidInput
from lagesbild.forums.models import Forum, Membership, Organisation
from lagesbild.inputs import parse_date, parse_ids

DEFAULT_RESOLUTION = 9


def resolution_for_zoom(zoom: float) -> int:
    """Hexagons a few dozen pixels wide at the map's zoom."""
    if zoom < 12.5:
        return 8
    return 9 if zoom < 14.5 else 10


def check_resolution(resolution: int) -> int:
    if resolution not in H3_RESOLUTIONS:
        raise InvalidInput(_("The hexagon resolution must be one of %(choices)s.") % {
            "choices": ", ".join(str(r) for r in H3_RESOLUTIONS)}, field="resolution")
    return resolution


def filtered(membership: Membership, flt: deviations.DeviationFilter) -> QuerySet[Deviation]:
    return deviations.apply_filter(deviations.visible_deviations(membership), membership.forum, flt)


# --- Periods, as the map names them ---------------------------------------------------------------------

PERIODS = ("meeting", "7", "30", "90", "year", "all", "custom")


DEFAULT_PERIOD = "90"


def map_filter(forum: Forum, data: QueryDict, with_period: bool = True) -> deviations.DeviationFilter:
    """The map's filter from its address's query string: period, from, to, category, organisation, status, q.
    Without the period, for what is new whenever it happened (a saved view's alerts)."""
    start = end = None
    if with_period:
        start, end = period_range(forum, data.get("period") or DEFAULT_PERIOD, parse_date(data.get("from"), "from"),
                                  parse_date(data.get("to"), "to"))
    return deviations.DeviationFilter(start=start, end=end, categories=data.getlist("category"),
                                      organisations=parse_ids(data.getlist("organisation"), "organisation"),
                                      statuses=data.getlist("status"), q=data.get("q", ""))


def period_range(forum: Forum, period: str, start: dt.date | None, end: dt.date | None,
                 now: dt.datetime | None = None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The map's period choice as a start and end, in the forum's time zone (custom dates are whole days)."""
    from lagesbild.meetings.services import last_meeting_at

    now = now or timezone.now()
    tz = ZoneInfo(forum.timezone)
    if period == "meeting":
        return last_meeting_at(forum) or now - dt.timedelta(days=30), None
    if period in {"7", "30", "90"}:
        return now - dt.timedelta(days=int(period)), None
    if period == "year":
        return dt.datetime(now.astimezone(tz).year, 1, 1, tzinfo=tz), None
    if period == "custom":
        begin = dt.datetime.combine(start, dt.time(0), tzinfo=tz) if start else None
        finish = dt.datetime.combine(end, dt.time(23, 59, 59), tzinfo=tz) if end else None
        return begin, finish
    if period in {"all", ""}:
        return None, None
    raise InvalidInput(_("Unknown period: %(period)s.") % {"period": period}, field="period")


# --- Hexagons -------------------------------------------------------------------------------------------

def hexagon_counts(queryset: QuerySet[Deviation], resolution: int) -> dict[int, int]:
    """Deviations per hexagon, where they lie: a point in its hexagon, a line or area in each one it meets (so
    the counts of a map add up to more than the number of deviations when lines and areas cross hexagons)."""
    counts = anchor_counts(queryset.filter(shape_min_lon__isnull=True), resolution)
    for cell, n in (queryset.filter(shape_min_lon__isnull=False, cells__resolution=resolution)
                    .values_list("cells__cell").annotate(n=Count("id", distinct=True)).order_by()):
        counts[cell] = counts.get(cell, 0) + n
    return counts


def anchor_counts(queryset: QuerySet[Deviation], resolution: int) -> dict[int, int]:
    """Deviations per hexagon, each counted once, at its point (a line's or area's anchor): for the statistics
    that test significance, which assume one count per deviation."""
    column = f"h3_{check_resolution(resolution)}"
    rows = queryset.exclude(**{f"{column}__isnull": True}).values_list(column).annotate(n=Count("id")).order_by()
    return {cell: n for cell, n in rows}


def hexagon_rows(queryset: QuerySet[Deviation], resolution: int, *fields: str) -> list[tuple[Any, ...]]:
    """(hexagon, *fields) for each deviation in each hexagon it lies in (see hexagon_counts)."""
    column = f"h3_{check_resolution(resolution)}"
    points = queryset.filter(shape_min_lon__isnull=True).exclude(**{f"{column}__isnull": True})
    drawn = queryset.filter(shape_min_lon__isnull=False, cells__resolution=resolution)
    return [*points.values_list(column, *fields), *drawn.values_list("cells__cell", *fields).distinct()]


def hexagon_ring(cell: int) -> list[list[float]]:
    boundary = [[round(lng, 6), round(lat, 6)] for lat, lng in h3.cell_to_boundary(h3.int_to_str(cell))]
    return [*boundary, boundary[0]]


def hexagon_features(values: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "Feature", "id": h3.int_to_str(cell),
             "geometry": {"type": "Polygon", "coordinates": [hexagon_ring(cell)]},
             "properties": {"cell": h3.int_to_str(cell), **props}} for cell, props in values.items()]


def hotspots(membership: Membership, queryset: QuerySet[Deviation], resolution: int = DEFAULT_RESOLUTION
             ) -> Hotspots:
    """Hot and cold spots; where the hexagons are too small for the data, larger ones (counted exactly where
    the deviations store that resolution)."""
    def counts_at(larger: int) -> dict[int, int] | None:
        return anchor_counts(queryset, larger) if larger in H3_RESOLUTIONS else None

    # One count per deviation, at its point: a line through five hexagons would otherwise add five correlated
    # counts, and the test's false-alarm rate would no longer hold.
    return find_hotspots(anchor_counts(queryset, resolution), resolution, membership.forum.area, counts_at)


def hotspot_summary(result: Hotspots) -> str:
    """The finding in plain Swedish (or English)."""
    if result.verdict == "too_few":
        return _("Too few deviations (%(count)d) to look for hotspots: at least %(min)d are needed.") % {
            "count": result.total, "min": MIN_DEVIATIONS}
    if result.verdict == "no_variation":
        return _("The deviations are spread evenly over the hexagons, so there are no hotspots.")
    hot = [c for c in result.hot if (c.fdr or 1) <= 0.05]
    cold = [c for c in result.cold if (c.fdr or 1) <= 0.05]
    if not hot and not cold:
        text = _("No hexagon stands out at a false discovery rate of 5 %%: the differences are within what "
                 "chance gives.")
    else:
        text = _("%(hot)d hexagons are hotspots and %(cold)d cold spots at a false discovery rate of 5 %%: of the "
                 "hexagons marked, at most about one in twenty is expected to be chance. In a hotspot, the hexagon "
                 "and its neighbours together have more deviations than chance would put there.") % {
            "hot": len(hot), "cold": len(cold)}
    if result.requested_resolution is not None:
        text += " " + _("The hexagons were made larger (size %(size)d instead of %(asked)d): with so few deviations, "
                        "smaller ones cannot show anything.") % {
            "size": result.resolution, "asked": result.requested_resolution}
    return text


# --- Names for hexagons --------------------------------------------------------------------------------------

def hexagon_names(membership: Membership, queryset: QuerySet[Deviation], cells: list[int], resolution: int
                  ) -> dict[int, str]:
    """A name people know for each hexagon, never its H3 id: the forum's place it lies in, the street or place
    its deviations name most often, a place nearby ("near Torget"), or where it lies from the nearest place."""
    from lagesbild.places.services import describe_position, forum_places, places_containing

    if not cells:
        return {}
    named: dict[int, Counter[str]] = defaultdict(Counter)
    if resolution in H3_RESOLUTIONS:  # hexagons made larger than the stored ones are named by places alone
        column = f"h3_{resolution}"
        for cell, place_name, n in (queryset.filter(**{f"{column}__in": cells}).exclude(place_name="")
                                    .values_list(column, "place_name").annotate(n=Count("id")).order_by()):
            named[cell][_street(place_name)] += n
    known = list(forum_places(membership))
    names = {}
    for cell in cells:
        lat, lon = h3.cell_to_latlng(h3.int_to_str(cell))
        if not places_containing(known, lon, lat) and named.get(cell):
            names[cell] = named[cell].most_common(1)[0][0]
        else:
            names[cell] = describe_position(known, lon, lat) or _("%(lat).4f° N, %(lon).4f° E") % {
                "lat": lat, "lon": lon}
    return names


def _street(place_name: str) -> str:
    """'Farstavägen 12, vid kiosken' as 'Farstavägen': what several reports of one street share."""
    first = place_name.split(",")[0].strip()
    return " ".join(word for word in first.split() if not any(ch.isdigit() for ch in word)) or first


# --- When ---------------------------------------------------------------------------------------------------

def week_hour_grid(queryset: QuerySet[Deviation]) -> list[list[int]]:
    """Deviations per weekday (Monday first) and hour of the day, in the forum's local time."""
    grid = [[0] * 24 for _day in range(7)]
    rows = (queryset.exclude(local_weekday__isnull=True).values_list("local_weekday", "local_hour")
            .annotate(n=Count("id")).order_by())
    for weekday, hour, n in rows:
        grid[weekday][hour] = n
    return grid


def months_back(last: int, count: int) -> list[int]:
    """`count` months as yyyymm, ending with `last`."""
    year, month = divmod(last, 100)
    result = []
    for _i in range(count):
        result.append(year * 100 + month)
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return result[::-1]


@dataclass
class Trend:
    months: list[int]  # yyyymm, oldest first
    rows: list[tuple[str, str, list[int], list[int]]]  # key, name, this year, the same months a year before
    totals: list[int] = field(default_factory=list)
    totals_before: list[int] = field(default_factory=list)


def monthly_trend(membership: Membership, flt: deviations.DeviationFilter, months: int = 12,
                  now: dt.datetime | None = None) -> Trend:
    """Per main category and month, the last `months` months up to the filter's end, against the same months a
    year earlier. The filter's start is not used: the trend has its own window."""
    forum = membership.forum
    end = (flt.end or now or timezone.now()).astimezone(ZoneInfo(forum.timezone))
    window = months_back(end.year * 100 + end.month, months)
    before = [m - 100 for m in window]
    queryset = filtered(membership, replace(flt, start=None, end=None)).filter(local_month__in=window + before)
    rows = queryset.values_list("local_month", "category__parent__key", "category__key").annotate(n=Count("id"))
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for month, parent, key, n in rows.order_by():
        counts[parent or key][month] += n
    names = {c.key: c.name for c in deviations.forum_categories(forum)}
    table = sorted(((key, names.get(key, key), [counts[key][m] for m in window], [counts[key][m] for m in before])
                    for key in counts), key=lambda r: (-sum(r[2]), r[1]))
    return Trend(months=window, rows=table, totals=[sum(r[2][i] for r in table) for i in range(months)],
                 totals_before=[sum(r[3][i] for r in table) for i in range(months)])


# --- Actors ----------------------------------------------------------------------------------------------------

@dataclass
class Actors:
    by: str
    columns: list[tuple[str, str]]  # main category key and name
    rows: list[tuple[str, list[int], int]]  # organisation (or kind) name, count per category, total
    overlap: list[tuple[int, int, int, list[str]]]  # hexagon, organisations, deviations, their names
    maps: list[tuple[str, dict[int, int]]]  # per organisation: hexagon counts


def actors(membership: Membership, queryset: QuerySet[Deviation], by: str = "organisation", small_maps: int = 6,
           resolution: int = DEFAULT_RESOLUTION) -> Actors:
    """Who reports what, and where: organisation (or kind of organisation) by main category, small maps
    per organisation, and the hexagons that several organisations report."""
    if by not in {"organisation", "kind"}:
        raise InvalidInput(_("Split by organisation or by kind of organisation."), field="by")
    group = "organisation__name" if by == "organisation" else "organisation__kind"
    kinds = dict(Organisation.Kind.choices)
    label = (lambda v: str(v)) if by == "organisation" else (lambda v: str(kinds.get(v, v)))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for who, parent, key, n in queryset.values_list(group, "category__parent__key", "category__key").annotate(
            n=Count("id")).order_by():
        counts[label(who)][parent or key] += n
    names = {c.key: c.name for c in deviations.forum_categories(membership.forum)}
    used = Counter[str]()
    for per in counts.values():
        used.update(per)
    columns = [(key, names.get(key, key)) for key, _n in used.most_common()]
    rows = sorted(((who, [per[k] for k, _name in columns], sum(per.values())) for who, per in counts.items()),
                  key=lambda r: (-r[2], r[0]))
    column = f"h3_{check_resolution(resolution)}"
    several = (queryset.exclude(**{f"{column}__isnull": True}).values(column)
               .annotate(orgs=Count("organisation", distinct=True), n=Count("id"))
               .filter(orgs__gte=2).order_by("-orgs", "-n")[:20])
    cells = {row[column]: (row["orgs"], row["n"]) for row in several}
    who_where: dict[int, set[str]] = defaultdict(set)
    for cell, who in queryset.filter(**{f"{column}__in": list(cells)}).values_list(column, group).distinct():
        who_where[cell].add(label(who))
    overlap = [(cell, orgs, n, sorted(who_where[cell])) for cell, (orgs, n) in cells.items()]
    per_map: dict[str, dict[int, int]] = defaultdict(dict)
    top = {r[0] for r in rows[:small_maps]}
    for who, cell, n in (queryset.exclude(**{f"{column}__isnull": True}).values_list(group, column)
                         .annotate(n=Count("id")).order_by()):
        if label(who) in top:
            per_map[label(who)][cell] = n
    maps = [(r[0], per_map.get(r[0], {})) for r in rows[:small_maps]]
    return Actors(by=by, columns=columns, rows=rows, overlap=overlap, maps=maps)


# --- Repeat places ----------------------------------------------------------------------------------------------

@dataclass
class Repeat:
    cell: int
    weeks: int  # weeks with at least one deviation, of the last `of_weeks`
    count: int
    of_weeks: int
    place: str = ""


def repeat_places(membership: Membership, queryset: QuerySet[Deviation], weeks: int = 12, min_weeks: int = 4,
                  resolution: int = DEFAULT_RESOLUTION, now: dt.datetime | None = None) -> list[Repeat]:
    """Hexagons with deviations in many of the last `weeks` weeks: problems that come back, not one busy night."""
    if not 2 <= weeks <= 104:
        raise InvalidInput(_("The number of weeks must be between 2 and 104."), field="weeks")
    if not 1 <= min_weeks <= weeks:
        raise InvalidInput(_("The least number of weeks must be between 1 and the number of weeks."),
                           field="min_weeks")
    from lagesbild.places.services import forum_places, places_containing

    now = now or timezone.now()
    since = now - dt.timedelta(weeks=weeks)
    seen: dict[int, set[int]] = defaultdict(set)
    totals: Counter[int] = Counter()
    # Week 0 is the last seven days, week `weeks - 1` the oldest; a deviation exactly `weeks` weeks old
    # would be a week too many, so the window is open at its start.
    for cell, observed, _pk in hexagon_rows(queryset.filter(observed_at__gt=since, observed_at__lte=now),
                                            resolution, "observed_at", "pk"):
        seen[cell].add(int((now - observed).total_seconds() // (7 * 86400)))
        totals[cell] += 1
    places = list(forum_places(membership))
    result = []
    for cell, week_set in seen.items():
        if len(week_set) >= min_weeks:
            lat, lon = h3.cell_to_latlng(h3.int_to_str(cell))
            inside = places_containing(places, lon, lat)
            result.append(Repeat(cell=cell, weeks=len(week_set), count=totals[cell], of_weeks=weeks,
                                 place=", ".join(p.name for p in inside)))
    result.sort(key=lambda r: (-r.weeks, -r.count, r.cell))
    return result


# --- Comparing periods -------------------------------------------------------------------------------------------

@dataclass
class Comparison:
    against: str  # "previous" or "last_year"
    period: tuple[dt.datetime, dt.datetime]
    other: tuple[dt.datetime, dt.datetime]
    categories: list[tuple[str, str, int, int]]  # key, name, this period, the other
    cells: dict[int, tuple[int, int]]  # hexagon: (this period, the other)

    @property
    def total(self) -> tuple[int, int]:
        return sum(c[2] for c in self.categories), sum(c[3] for c in self.categories)


def a_year_before(when: dt.datetime) -> dt.datetime:
    try:
        return when.replace(year=when.year - 1)
    except ValueError:  # 29 February
        return when.replace(year=when.year - 1, day=28)


def compare_periods(membership: Membership, flt: deviations.DeviationFilter, against: str = "previous",
                    resolution: int = DEFAULT_RESOLUTION, now: dt.datetime | None = None) -> Comparison:
    """The filter's period against the one before it (of equal length) or the same period a year earlier.
    Without a period, the last 30 days."""
    if against not in {"previous", "last_year"}:
        raise InvalidInput(_("Compare with the previous period or the same period last year."), field="against")
    end = flt.end or now or timezone.now()
    start = flt.start or end - dt.timedelta(days=30)
    other = (start - (end - start), start) if against == "previous" else (a_year_before(start), a_year_before(end))
    base = filtered(membership, replace(flt, start=None, end=None))
    check_resolution(resolution)
    cells: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    categories: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for index, (begin, finish) in enumerate(((start, end), other)):
        part = base.filter(observed_at__gte=begin, observed_at__lt=finish)
        for cell, n in hexagon_counts(part, resolution).items():
            cells[cell][index] = n
        for parent, key, n in part.values_list("category__parent__key", "category__key").annotate(
                n=Count("id")).order_by():
            categories[parent or key][index] += n
    names = {c.key: c.name for c in deviations.forum_categories(membership.forum)}
    table = sorted(((k, names.get(k, k), v[0], v[1]) for k, v in categories.items()), key=lambda r: (-r[2], r[1]))
    return Comparison(against=against, period=(start, end), other=other, categories=table,
                      cells={c: (v[0], v[1]) for c, v in cells.items()})


# --- The forum's own fields ----------------------------------------------------------------------------------

@dataclass
class FieldCounts:
    key: str
    label: str
    kind: str
    filled: int  # deviations of the filter with the field filled in
    values: list[tuple[str, int]]  # yes/no and choices: each value (in words) and how many, most first
    total: float | None = None  # numbers: their sum (the number of people, say) and mean
    mean: float | None = None


def own_fields(membership: Membership, queryset: QuerySet[Deviation]) -> list[FieldCounts]:
    """For each of the forum's own fields, what the filter's deviations (those the member may see) hold."""
    from lagesbild.deviations.fields import forum_fields, stored_value

    result = []
    for definition in forum_fields(membership.forum):
        stored = [v for v in queryset.filter(fields__has_key=definition.key)
                  .annotate(own_value=stored_value(definition.key)).values_list("own_value", flat=True).iterator()
                  if v is not None]
        counts = FieldCounts(definition.key, definition.label, definition.kind, len(stored), [])
        if definition.kind == "yes_no":
            tally = Counter(bool(v) for v in stored)
            counts.values = [(str(_("Yes")), tally[True]), (str(_("No")), tally[False])]
        elif definition.kind == "choice":
            chosen = Counter(str(v) for v in stored)
            counts.values = [(choice, chosen[choice]) for choice in definition.choices]
            counts.values.sort(key=lambda pair: -pair[1])
        elif definition.kind == "number":
            numbers = [float(v) for v in stored if isinstance(v, int | float) and not isinstance(v, bool)]
            if numbers:
                counts.total = sum(numbers)
                counts.mean = counts.total / len(numbers)
        result.append(counts)
    return result
