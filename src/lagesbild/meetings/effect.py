"""Did it make a difference? Deviations at a place in equal periods before and after an action,
against the rest of the forum's area in the same periods.

The comparison asks: of the deviations at the place in the two periods, is the share that came after
the action different from what the rest of the area's trend would give? Under "no effect" the count
after follows a binomial distribution with n = before + after and p = the rest's share after. An exact
two-sided binomial test says whether the difference is larger than chance. With few deviations nothing
can be concluded, and the result says so.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, QuerySet
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

DEFAULT_DAYS = 90
MIN_DAYS = 14  # less than two weeks after the action says nothing about weekly rhythms
MIN_COUNT = 10  # fewer deviations than this at the place, before and after together, says nothing
SIGNIFICANCE = 0.05
ACTION_RADIUS_M = 150  # an action without a place is judged in this circle around its point


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
    verdict: str = ""  # too_early, too_few, decrease, increase, no_clear_change
    message: str = ""

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


def binomial_two_sided(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial p-value: the probability of outcomes no more likely than k."""
    if n == 0:
        return 1.0
    # In logarithms: C(n, i) overflows a float long before a busy place has few enough deviations.
    log_p, log_q, log_n = math.log(p), math.log(1 - p), math.lgamma(n + 1)
    probabilities = [math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
                     for i in range(n + 1)]
    observed = probabilities[k]
    return min(1.0, sum(q for q in probabilities if q <= observed * (1 + 1e-9)))


def compare(forum: Forum, at_place: QuerySet[Deviation], everywhere: QuerySet[Deviation], pivot: dt.datetime,
            days: int = DEFAULT_DAYS, now: dt.datetime | None = None) -> Effect:
    """Counts at the place and in the rest of the area, `days` before and after `pivot`.

    The periods are shortened to what has passed since the pivot, so they stay equal.
    """
    now = now or timezone.now()
    passed = (now - pivot).days
    days = max(0, min(days, passed))
    before = (pivot - dt.timedelta(days=days), pivot)
    after = (pivot, pivot + dt.timedelta(days=days))

    def count(queryset: QuerySet[Deviation], period: tuple[dt.datetime, dt.datetime]) -> int:
        return queryset.filter(observed_at__gte=period[0], observed_at__lt=period[1]).count()

    place_before, place_after = count(at_place, before), count(at_place, after)
    effect = Effect(pivot=pivot, days=days, place_before=place_before, place_after=place_after,
                    rest_before=count(everywhere, before) - place_before,
                    rest_after=count(everywhere, after) - place_after)
    tallies = []
    for period in (before, after):
        rows = at_place.filter(observed_at__gte=period[0], observed_at__lt=period[1]).values_list(
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
        effect.message = _("It is too soon to say: compare at least two weeks after the action.")
        return
    if n < MIN_COUNT:
        effect.verdict = "too_few"
        effect.message = ngettext(
            "Too few deviations (%(n)d) at the place to conclude anything about the effect.",
            "Too few deviations (%(n)d) at the place to conclude anything about the effect.", n) % {"n": n}
        return
    rest_total = effect.rest_before + effect.rest_after
    share_after = effect.rest_after / rest_total if rest_total else 0.5
    share_after = min(max(share_after, 0.001), 0.999)
    effect.p_value = binomial_two_sided(effect.place_after, n, share_after)
    expected = n * share_after
    if effect.p_value >= SIGNIFICANCE:
        effect.verdict = "no_clear_change"
        effect.message = _("No clear difference: the change at the place is within what chance and the trend in "
                           "the rest of the area would give.")
    elif effect.place_after < expected:
        effect.verdict = "decrease"
        effect.message = _("Fewer deviations at the place after the action than the trend in the rest of the area "
                           "would give. The difference is larger than chance would explain, but other things than "
                           "the action may also have changed.")
    else:
        effect.verdict = "increase"
        effect.message = _("More deviations at the place after the action than the trend in the rest of the area "
                           "would give. More reports can also mean more attention to the place.")


def place_effect(membership: Membership, place: Place, pivot: dt.datetime, days: int = DEFAULT_DAYS,
                 now: dt.datetime | None = None) -> Effect:
    """The comparison from what the member may see."""
    everywhere = deviations.visible_deviations(membership)
    return compare(membership.forum, places.deviations_at(place, everywhere), everywhere, pivot, days, now)


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


def action_effect(membership: Membership, action: Action, days: int = DEFAULT_DAYS,
                  now: dt.datetime | None = None) -> Effect | None:
    area = action_area(action)
    if area is None:
        return None
    return place_effect(membership, area, action_pivot(action), days, now)


def as_dict(effect: Effect) -> dict[str, Any]:
    return {
        "pivot": effect.pivot, "days": effect.days, "placeBefore": effect.place_before,
        "placeAfter": effect.place_after, "restBefore": effect.rest_before, "restAfter": effect.rest_after,
        "expectedAfter": None if effect.expected_after is None else round(effect.expected_after, 2),
        "pValue": None if effect.p_value is None else round(effect.p_value, 4), "verdict": effect.verdict,
        "message": effect.message,
        "byCategory": [{"category": n, "before": b, "after": a} for n, b, a in effect.by_category],
    }
