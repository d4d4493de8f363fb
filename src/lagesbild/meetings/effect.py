"""Did it make a difference? Deviations at a place in equal periods before and after an action, against the
rest of the forum's area in the same weeks.

The question: did the place's share of the area's deviations change after the action, more than chance
would change it? Three things make the obvious tests cry wolf on reports like ours, and each is handled:

- Reports come in bursts (one fire, five reports; a busy weekend), so counts vary far more than a Poisson or
  binomial model says. A test on the four totals (Fisher's exact, or a binomial test against the rest's
  trend) then finds "effects" in one case of four where there are none. Here the unit is the week: the
  p-value comes from shuffling which weeks count as before and which as after (a permutation test), which
  needs no model of how counts vary, and holds for a small rest of the area as well.
- The rest of the area has its own trend (winter, summer), which the place shares: comparing shares, not
  counts, takes it out.
- An action is decided where something has just peaked, and a peak tends to pass by itself (regression to
  the mean). So the weeks that prompted the action are left out of "before": the period before ends where
  the meeting's period began (or four weeks before the action was decided), and the page says so.

tests/test_effect_calibration.py checks the false-alarm rate on simulated data with all three, and that a
real halving is found. Fewer than ten deviations at the place, or less than four weeks after the action,
is said to be too little to conclude anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from math import comb
from typing import Any

import numpy as np
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from lagesbild import geometry
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.forums.models import Forum, Membership
from lagesbild.meetings.models import Action
from lagesbild.places import services as places
from lagesbild.places.models import Place

DEFAULT_DAYS = 91  # thirteen weeks
MIN_DAYS = 28  # four weeks after: fewer cannot reach significance by shuffling weeks
MIN_COUNT = 10  # fewer deviations than this at the place, before and after together, says nothing
SIGNIFICANCE = 0.05
SPIKE = dt.timedelta(days=28)  # left out before an action that did not come from a meeting
ACTION_RADIUS_M = 150  # an action without a place is judged in this circle around its point
PERMUTATIONS = 4999  # when there are more ways to shuffle the weeks than ENUMERATE, this many random ones
ENUMERATE = 20_000


@dataclass
class Effect:
    pivot: dt.datetime
    days: int
    place_before: int
    place_after: int
    rest_before: int
    rest_after: int
    by_category: list[tuple[str, int, int]] = field(default_factory=list)  # name, before, after
    p_value: float | None = None
    verdict: str = ""  # too_early, too_few, decrease, increase, no_clear_change, not_done
    message: str = ""
    before_start: dt.datetime | None = None
    before_end: dt.datetime | None = None  # where "before" ends: the weeks that prompted the action are left out
    weeks: list[tuple[int, int]] = field(default_factory=list)  # (place, rest) per week, before then after

    @property
    def expected_after(self) -> float | None:
        """What the place would have had after, had it followed the rest of the area."""
        if self.rest_before == 0:
            return None
        return self.place_before * self.rest_after / self.rest_before

    @property
    def place_change(self) -> float | None:
        return None if self.place_before == 0 else (self.place_after - self.place_before) / self.place_before

    @property
    def rest_change(self) -> float | None:
        return None if self.rest_before == 0 else (self.rest_after - self.rest_before) / self.rest_before

    @property
    def left_out_days(self) -> int:
        """Days between the end of "before" and the action, left out of the comparison."""
        return 0 if self.before_end is None else max(0, (self.pivot - self.before_end).days)


def _share_difference(place: np.ndarray, total: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The place's share of all deviations in the weeks marked after, minus its share in the others; one
    value per row of `after` (a 0/1 matrix over the weeks)."""
    place_after = after @ place
    total_after = after @ total
    place_before = place.sum() - place_after
    total_before = total.sum() - total_after
    with np.errstate(divide="ignore", invalid="ignore"):
        share_after = np.where(total_after > 0, place_after / total_after, 0.0)
        share_before = np.where(total_before > 0, place_before / total_before, 0.0)
    return np.asarray(share_after - share_before)


def permutation_p(place: list[int], rest: list[int], weeks_after: int) -> float:
    """Two-sided p-value of the change in the place's share, shuffling which weeks are "after".

    `place` and `rest` hold one count per week, the weeks before first and the last `weeks_after` after. With
    few weeks every arrangement is tried; with many, PERMUTATIONS random ones, seeded by the counts so that
    the same data always give the same answer.
    """
    counts_place = np.array(place, dtype=float)
    total = counts_place + np.array(rest, dtype=float)
    n = len(place)
    actual = np.zeros((1, n))
    actual[0, n - weeks_after:] = 1
    observed = abs(_share_difference(counts_place, total, actual)[0])
    if comb(n, weeks_after) <= ENUMERATE:
        masks = np.zeros((comb(n, weeks_after), n))
        for row, chosen in enumerate(combinations(range(n), weeks_after)):
            masks[row, list(chosen)] = 1
        stats = np.abs(_share_difference(counts_place, total, masks))
        return float(np.mean(stats >= observed - 1e-12))
    seed = int.from_bytes(hashlib.sha256(repr((place, rest)).encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    masks = rng.permuted(np.repeat(actual, PERMUTATIONS, axis=0), axis=1)
    stats = np.abs(_share_difference(counts_place, total, masks))
    return float((1 + np.sum(stats >= observed - 1e-12)) / (1 + PERMUTATIONS))


def _weekly(queryset: QuerySet[Deviation], starts: list[dt.datetime]) -> list[int]:
    """Deviations in each week starting at `starts`, counted in one query."""
    if not starts:
        return []
    per_week = {f"w{i}": Count("id", filter=Q(observed_at__gte=start, observed_at__lt=start + dt.timedelta(days=7)))
                for i, start in enumerate(starts)}
    row = queryset.filter(observed_at__gte=min(starts), observed_at__lt=max(starts) + dt.timedelta(days=7)
                          ).aggregate(**per_week)
    return [int(row[f"w{i}"] or 0) for i in range(len(starts))]


def compare(forum: Forum, at_place: QuerySet[Deviation], everywhere: QuerySet[Deviation], pivot: dt.datetime,
            days: int = DEFAULT_DAYS, now: dt.datetime | None = None, before_end: dt.datetime | None = None
            ) -> Effect:
    """Counts at the place and in the rest of the area, in whole weeks after `pivot` and as many weeks
    ending at `before_end` (the pivot, unless the weeks that prompted the action are to be left out).

    The periods are shortened to what has passed since the pivot, so they stay equal.
    """
    now = now or timezone.now()
    passed = (now - pivot).days
    weeks = max(0, min(days, passed)) // 7
    days = weeks * 7 if passed >= MIN_DAYS else max(0, min(days, passed))
    end_before = min(before_end or pivot, pivot)
    after_starts = [pivot + dt.timedelta(days=7 * k) for k in range(weeks)]
    before_starts = [end_before - dt.timedelta(days=7 * (weeks - k)) for k in range(weeks)]
    place_weeks = _weekly(at_place, before_starts + after_starts)
    all_weeks = _weekly(everywhere, before_starts + after_starts)
    rest_weeks = [a - p for a, p in zip(all_weeks, place_weeks, strict=True)]
    effect = Effect(pivot=pivot, days=days, place_before=sum(place_weeks[:weeks]),
                    place_after=sum(place_weeks[weeks:]), rest_before=sum(rest_weeks[:weeks]),
                    rest_after=sum(rest_weeks[weeks:]), before_start=end_before - dt.timedelta(days=7 * weeks),
                    before_end=end_before, weeks=list(zip(place_weeks, rest_weeks, strict=True)))
    tallies = []
    for start, end in ((effect.before_start, end_before), (pivot, pivot + dt.timedelta(days=7 * weeks))):
        rows = at_place.filter(observed_at__gte=start, observed_at__lt=end).values_list(
            "category__parent__key", "category__key").annotate(n=Count("id")).order_by()
        tally: Counter[str] = Counter()
        for parent, key, n in rows:
            tally[parent or key] += n
        tallies.append(tally)
    names = {c.key: c.name for c in deviations.forum_categories(forum)}
    keys = sorted(set(tallies[0]) | set(tallies[1]), key=lambda k: (-(tallies[0][k] + tallies[1][k]), k))
    effect.by_category = [(names.get(k, k), tallies[0][k], tallies[1][k]) for k in keys]
    _judge(effect)
    return effect


def _judge(effect: Effect) -> None:
    n = effect.place_before + effect.place_after
    if effect.days < MIN_DAYS:
        effect.verdict = "too_early"
        effect.message = _("It is too soon to say: compare at least four weeks after the action.")
        return
    if n < MIN_COUNT:
        effect.verdict = "too_few"
        effect.message = ngettext(
            "Too few deviations (%(n)d) at the place to conclude anything about the effect.",
            "Too few deviations (%(n)d) at the place to conclude anything about the effect.", n) % {"n": n}
        return
    weeks = len(effect.weeks) // 2
    effect.p_value = permutation_p([p for p, _r in effect.weeks], [r for _p, r in effect.weeks], weeks)
    before_total = effect.place_before + effect.rest_before
    after_total = effect.place_after + effect.rest_after
    share_before = effect.place_before / before_total if before_total else 0.0
    share_after = effect.place_after / after_total if after_total else 0.0
    if effect.p_value >= SIGNIFICANCE:
        effect.verdict = "no_clear_change"
        effect.message = _("No clear difference: the change at the place is within what chance and the trend in "
                           "the rest of the area would give.")
    elif share_after < share_before:
        effect.verdict = "decrease"
        effect.message = _("Fewer deviations at the place after the action than the trend in the rest of the area "
                           "would give. The difference is larger than chance would explain, but other things than "
                           "the action may also have changed.")
    else:
        effect.verdict = "increase"
        effect.message = _("More deviations at the place after the action than the trend in the rest of the area "
                           "would give. More reports can also mean more attention to the place.")


def place_effect(membership: Membership, place: Place, pivot: dt.datetime, days: int = DEFAULT_DAYS,
                 now: dt.datetime | None = None, before_end: dt.datetime | None = None) -> Effect:
    """The comparison from what the member may see."""
    everywhere = deviations.visible_deviations(membership)
    return compare(membership.forum, places.deviations_at(place, everywhere), everywhere, pivot, days, now,
                   before_end)


def action_area(action: Action) -> Place | None:
    """Where an action's effect is measured: its place, or a circle around its point."""
    if action.place is not None:
        return action.place
    if action.lon is None or action.lat is None:
        return None
    x, y = geometry.to_sweref99tm(action.lon, action.lat)
    bbox = places.circle_bbox(action.lon, action.lat, ACTION_RADIUS_M)
    return Place(forum=action.forum, name=action.title, shape=Place.Shape.CIRCLE, lon=action.lon, lat=action.lat,
                 sweref_x=x, sweref_y=y, radius_m=ACTION_RADIUS_M, min_lon=bbox[0], min_lat=bbox[1],
                 max_lon=bbox[2], max_lat=bbox[3])


def action_pivot(action: Action) -> dt.datetime:
    """An action takes effect when it is done; until then, from when it was decided."""
    return action.completed_at or action.created_at


def before_end(action: Action) -> dt.datetime:
    """Where "before" ends: at the start of the period of the meeting that decided the action, whose
    deviations prompted it; for an action decided elsewhere, four weeks before it was decided."""
    if action.meeting is not None:
        return min(action.meeting.period_start, action.created_at)
    return action.created_at - SPIKE


def action_effect(membership: Membership, action: Action, days: int = DEFAULT_DAYS,
                  now: dt.datetime | None = None) -> Effect | None:
    area = action_area(action)
    if area is None:
        return None
    effect = place_effect(membership, area, action_pivot(action), days, now, before_end(action))
    # "Was not done" is not "did not work": an action not carried out is not judged at all.
    if action.execution == Action.Execution.NOT_AT_ALL:
        effect.verdict, effect.p_value = "not_done", None
        effect.message = _("The action was not carried out, so the numbers say nothing about whether it works.")
    elif action.execution == Action.Execution.PARTLY and effect.verdict in {"no_clear_change", "increase"}:
        effect.message += " " + _("The action was carried out only in part, which may be why.")
    return effect


def as_dict(effect: Effect) -> dict[str, Any]:
    return {
        "pivot": effect.pivot, "days": effect.days, "placeBefore": effect.place_before,
        "placeAfter": effect.place_after, "restBefore": effect.rest_before, "restAfter": effect.rest_after,
        "expectedAfter": None if effect.expected_after is None else round(effect.expected_after, 2),
        "pValue": None if effect.p_value is None else round(effect.p_value, 4), "verdict": effect.verdict,
        "message": effect.message, "beforeStart": effect.before_start, "beforeEnd": effect.before_end,
        "weeks": [{"place": p, "rest": r} for p, r in effect.weeks],
        "byCategory": [{"category": n, "before": b, "after": a} for n, b, a in effect.by_category],
    }
