"""Saved views and alerts: a member keeps a filter of the map under a name, and may be told of each new
deviation that matches it, in the app and by e-mail, at once or once a day.

Every match is made through the visibility gate as the member whose view it is, at the moment it is made,
and every alert is read through it again when shown or sent: a deviation the member's organisation may not
see (or no longer may, or that was withdrawn) makes no alert, no count and no e-mail.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import QuerySet
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from lagesbild import geometry
from lagesbild.alerts.models import Alert, SavedView
from lagesbild.analysis.services import map_filter
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.errors import DomainError, InvalidInput, NotFound
from lagesbild.forums.models import Membership
from lagesbild.inputs import visible_text

log = logging.getLogger(__name__)

# The parts of the map's address that make its filter; anything else in a saved address is dropped.
QUERY_KEYS = ("period", "from", "to", "category", "organisation", "status", "q")
MAX_VIEWS = 50  # per member: a list to choose from, not an archive
MAX_NAME = 80
ALERTS_SHOWN = 100
DIGEST_LINES = 20


@dataclass
class ViewInput:
    name: str
    query: str = ""  # the map's query string, as in its address
    bbox: str = ""  # minLon,minLat,maxLon,maxLat of the map's view; empty for the whole forum
    frequency: str = SavedView.Frequency.NONE
    email: bool = False


def views_of(membership: Membership) -> QuerySet[SavedView]:
    return SavedView.objects.filter(membership=membership).select_related("membership__forum").order_by("name", "pk")


def get_view(membership: Membership, view_id: int) -> SavedView:
    """One of the member's own views; anyone else's is as missing as one that does not exist."""
    view = views_of(membership).filter(pk=view_id).first()
    if view is None:
        raise NotFound(_("No such saved view."))
    return view


def _clean_query(membership: Membership, query: str) -> str:
    """The filter part of a map address, checked as the map checks it (unknown categories, organisations,
    statuses and periods are refused)."""
    given = QueryDict(query.lstrip("?"))
    kept = QueryDict(mutable=True)
    for key in QUERY_KEYS:
        for value in given.getlist(key):
            if "\x00" in value:  # %00 in the address: no one types it, and PostgreSQL cannot store it
                raise InvalidInput(_("Text may not contain the NUL character."), field=key)
            if value:
                kept.appendlist(key, value)
    flt = map_filter(membership.forum, kept)
    deviations.apply_filter(deviations.visible_deviations(membership), membership.forum, flt)  # checks, reads nothing
    if len(kept.urlencode()) > SavedView._meta.get_field("query").max_length:  # type: ignore[operator]
        raise InvalidInput(_("The filter is too long to save."), field="query")
    return kept.urlencode()


def _clean_bbox(text: str) -> list[float] | None:
    text = text.strip()
    if not text:
        return None
    box = [round(v, 6) for v in geometry.parse_bbox(text)]  # a metre or so is plenty for a map's view
    if box[0] >= box[2] or box[1] >= box[3]:
        raise InvalidInput(_("The map's view has no area."), field="bbox")
    return box


def _clean(membership: Membership, data: ViewInput) -> dict[str, Any]:
    name = visible_text(data.name)
    if not name:
        raise InvalidInput(_("Give the view a name."), field="name")
    if len(name) > MAX_NAME:
        raise InvalidInput(_("The name can be at most %(max)d characters.") % {"max": MAX_NAME}, field="name")
    _check_frequency(data.frequency, data.email)
    return {"name": name, "query": _clean_query(membership, data.query), "bbox": _clean_bbox(data.bbox),
            "frequency": data.frequency, "email": bool(data.email)}


def _check_frequency(frequency: str, email: bool) -> None:
    if frequency not in SavedView.Frequency.values:
        raise InvalidInput(_("Choose how often to be alerted."), field="frequency")
    if email and frequency == SavedView.Frequency.NONE:
        raise InvalidInput(_("Choose how often to be alerted, to be alerted by e-mail."), field="frequency")


def save_view(membership: Membership, data: ViewInput) -> SavedView:
    """Save the map's current filter (and view) under a name, for the member alone."""
    fields = _clean(membership, data)
    if views_of(membership).count() >= MAX_VIEWS:
        raise InvalidInput(_("You can keep at most %(max)d saved views. Remove one first.") % {"max": MAX_VIEWS},
                           field="name")
    if views_of(membership).filter(name=fields["name"]).exists():
        raise InvalidInput(_("You already have a view called %(name)s.") % {"name": fields["name"]}, field="name")
    try:
        with transaction.atomic():
            return SavedView.objects.create(forum_id=membership.forum_id, membership=membership,
                                            digest_sent_at=timezone.now(), **fields)
    except IntegrityError as exc:  # the same name saved twice at once
        raise InvalidInput(_("You already have a view called %(name)s.") % {"name": fields["name"]},
                           field="name") from exc


def change_alerts(membership: Membership, view_id: int, frequency: str, email: bool) -> SavedView:
    view = get_view(membership, view_id)
    _check_frequency(frequency, email)
    if (frequency, bool(email)) != (view.frequency, view.email):
        # E-mail about what comes from now on: alerts made before the change are not sent late.
        view.digest_sent_at = timezone.now()
    view.frequency, view.email = frequency, bool(email)
    view.save(update_fields=["frequency", "email", "digest_sent_at"])
    return view


def delete_view(membership: Membership, view_id: int) -> None:
    get_view(membership, view_id).delete()  # its alerts go with it


def map_address(view: SavedView) -> str:
    """The map page at the view's filter and box."""
    query = QueryDict(view.query, mutable=True)
    if view.bbox:
        query["bbox"] = ",".join(f"{v:g}" for v in view.bbox)
    address = reverse("map", kwargs={"forum": view.membership.forum.slug})
    return f"{address}?{query.urlencode()}" if query else address


def stale(view: SavedView) -> str:
    """Why the view no longer matches anything (a category or organisation the forum no longer has), or ""."""
    try:
        _alert_filter_checked(view)
    except DomainError as exc:
        return _("This view matches nothing any more: %(reason)s Save the map's filter again.") % {
            "reason": exc.message}
    return ""


def describe(view: SavedView) -> str:
    """The filter in words, for the list of views."""
    query = QueryDict(view.query)
    parts = []
    period = query.get("period") or "90"
    periods = {"meeting": _("since the last meeting"), "7": _("last 7 days"), "30": _("last 30 days"),
               "90": _("last 90 days"), "year": _("this year"), "all": _("all time"),
               "custom": _("%(from)s to %(to)s") % {"from": query.get("from", ""), "to": query.get("to", "")}}
    parts.append(periods.get(period, period))
    if categories := query.getlist("category"):
        names = {c.key: c.name for c in deviations.forum_categories(view.membership.forum)}
        parts.append(", ".join(names.get(key, key) for key in categories))
    if organisations := query.getlist("organisation"):
        parts.append(ngettext("%(count)d organisation", "%(count)d organisations", len(organisations)) % {
            "count": len(organisations)})
    if statuses := query.getlist("status"):
        labels = dict(Deviation.Status.choices)
        parts.append(", ".join(str(labels.get(s, s)) for s in statuses))
    if query.get("q"):
        parts.append(_("text “%(q)s”") % {"q": query["q"]})
    parts.append(_("the map's view when saved") if view.bbox else _("the whole forum"))
    return " · ".join(parts)


# --- Matching new deviations -----------------------------------------------------------------------------

def _alert_filter_checked(view: SavedView) -> deviations.DeviationFilter:
    flt = _alert_filter(view)
    deviations.apply_filter(deviations.visible_deviations(view.membership), view.membership.forum, flt)
    forum = view.membership.forum
    hidden_ids = deviations.hidden_category_ids(forum)
    hidden = {c.key for c in deviations.forum_categories(forum) if c.pk in hidden_ids}
    if flt.categories and set(flt.categories) <= hidden:
        raise InvalidInput(_("The forum no longer uses the category %(name)s.") % {"name": flt.categories[0]},
                           field="category")
    return flt


def _alert_filter(view: SavedView) -> deviations.DeviationFilter:
    """What a new deviation must match: the view's categories, organisations, statuses, text and box, whatever
    its period (a report made today about last week is still new)."""
    flt = map_filter(view.membership.forum, QueryDict(view.query), with_period=False)
    if view.bbox:
        flt.bbox = (view.bbox[0], view.bbox[1], view.bbox[2], view.bbox[3])
    return flt


def _watching(forum_id: int) -> QuerySet[SavedView]:
    return (SavedView.objects.filter(forum_id=forum_id, membership__is_active=True,
                                     membership__user__is_active=True)
            .exclude(frequency=SavedView.Frequency.NONE)
            .select_related("membership", "membership__forum", "membership__user", "membership__organisation"))


def match_new_deviation(forum_id: int, deviation_id: int) -> list[Alert]:
    """Make an alert for every saved view with alerts, saved before the deviation was reported, whose member
    may see the new deviation and whose filter it matches. Their own reports alert nobody."""
    made = []
    for view in _watching(forum_id):
        member = view.membership
        try:
            matching = deviations.apply_filter(deviations.visible_deviations(member), member.forum,
                                               _alert_filter(view))
            # A view alerts about what is reported after it was saved, also when the task runs later (a worker
            # that was stopped, a queue that was long).
            if not matching.filter(pk=deviation_id, reported_at__gte=view.created_at).exclude(
                    reporter_id=member.user_id).exists():
                continue
        except DomainError:
            continue  # the view names a category or organisation the forum no longer has: it matches nothing
        except DatabaseError:  # one member's view that the database cannot run must not cost the others theirs
            log.exception("Saved view %s could not be matched", view.pk)
            continue
        try:
            with transaction.atomic():
                made.append(Alert.objects.create(forum_id=forum_id, saved_view=view, deviation_id=deviation_id))
        except IntegrityError:
            continue  # already alerted (the task ran twice)
    return made


# --- Reading alerts ----------------------------------------------------------------------------------------

def _own_alerts(membership: Membership) -> QuerySet[Alert]:
    """The member's alerts about deviations they may still see."""
    return Alert.objects.filter(saved_view__membership=membership,
                                deviation_id__in=deviations.visible_deviations(membership).values("pk"))


def unread_count(membership: Membership) -> int:
    return _own_alerts(membership).filter(read_at__isnull=True).count()


@dataclass
class Shown:
    alert: Alert
    deviation: Deviation
    address: str


def alerts_of(membership: Membership, limit: int = ALERTS_SHOWN) -> list[Shown]:
    """The member's newest alerts, each with its deviation as the member may see it now."""
    alerts = list(_own_alerts(membership).select_related("saved_view").order_by("-created_at", "-pk")[:limit])
    found = {d.pk: d for d in deviations.visible_deviations(membership).filter(
        pk__in=[a.deviation_id for a in alerts]).select_related("category", "category__parent", "organisation")}
    base = reverse("map", kwargs={"forum": membership.forum.slug})
    return [Shown(a, found[a.deviation_id], f"{base}?period=all#deviation-{a.deviation_id}")
            for a in alerts if a.deviation_id in found]


def mark_read(membership: Membership) -> int:
    return Alert.objects.filter(saved_view__membership=membership, read_at__isnull=True).update(
        read_at=timezone.now())


# --- E-mail ------------------------------------------------------------------------------------------------

def _line(deviation: Deviation, zone: Any) -> str:
    """One deviation in an e-mail: category, time and place, never the description (e-mail leaves
    Lägesbild; the description is read after signing in)."""
    when = date_format(deviation.observed_at.astimezone(zone), "j F Y H:i")
    place = f", {deviation.place_name}" if deviation.place_name else ""
    return f"{deviation.category.name}, {when}{place}"


def _footer(view: SavedView) -> str:
    forum = view.membership.forum
    return _("You get this because you watch the view “%(name)s” in %(forum)s. Change or stop it here: "
             "%(url)s") % {"name": view.name, "forum": forum.name,
                           "url": settings.LAGESBILD_BASE_URL + reverse("saved-views", kwargs={"forum": forum.slug})}


def immediate_messages(alerts: list[Alert]) -> list[tuple[Alert, EmailMessage]]:
    """The e-mails of new alerts whose views send them at once (checked against the gate again), each with its
    alert, to be marked sent (`emailed`) once it went out."""
    messages = []
    with translation.override("sv"):
        for alert in alerts:
            view = alert.saved_view
            member = view.membership
            if view.frequency != SavedView.Frequency.IMMEDIATE or not view.email or not member.user.email:
                continue
            deviation = deviations.visible_deviations(member).filter(pk=alert.deviation_id).select_related(
                "category", "category__parent").first()
            if deviation is None:
                continue
            zone = ZoneInfo(member.forum.timezone)
            address = settings.LAGESBILD_BASE_URL + reverse("map", kwargs={"forum": member.forum.slug}) + \
                f"?period=all#deviation-{deviation.pk}"
            body = "\n\n".join([_line(deviation, zone), _("Open it on the map: %(url)s") % {"url": address},
                                _footer(view)])
            subject = _("New deviation in “%(name)s”") % {"name": view.name}
            messages.append((alert, EmailMessage(f"[{member.forum.name}] {subject}", body, to=[member.user.email])))
    return messages


def emailed(alert: Alert) -> None:
    Alert.objects.filter(pk=alert.pk).update(emailed_at=timezone.now())


# An alert of a view that e-mails at once and still not e-mailed this long after it was made: the mail server
# refused it. The daily run sends it then.
RETRY_AFTER = dt.timedelta(minutes=30)


@dataclass
class Digest:
    view: SavedView
    until: dt.datetime
    message: EmailMessage | None  # None: nothing new the member may see, so nothing to send


def digests(now: dt.datetime | None = None) -> list[Digest]:
    """The day's e-mail for every view that sends one; each alert is told of once. Run daily by
    `lagesbild alerts`, which marks a digest sent (`digest_sent`) only once its e-mail went out."""
    now = now or timezone.now()
    found_digests = []
    views = (SavedView.objects.filter(frequency__in=[SavedView.Frequency.DAILY, SavedView.Frequency.IMMEDIATE],
                                      email=True,
                                      membership__is_active=True, membership__user__is_active=True)
             .select_related("membership", "membership__forum", "membership__user"))
    with translation.override("sv"):
        for view in views:
            member = view.membership
            until = now if view.frequency == SavedView.Frequency.DAILY else now - RETRY_AFTER
            pending = Alert.objects.filter(saved_view=view, emailed_at__isnull=True, created_at__lte=until)
            if view.digest_sent_at is not None:  # nothing from before the e-mail was asked for
                pending = pending.filter(created_at__gt=view.digest_sent_at)
            # Counted and listed only where the member may still see the deviation.
            ids = list(_own_alerts(member).filter(pk__in=pending.values("pk")).values_list("deviation_id", flat=True))
            if not ids or not member.user.email:
                found_digests.append(Digest(view, until, None))
                continue
            found = list(deviations.visible_deviations(member).filter(pk__in=ids).select_related(
                "category", "category__parent").order_by("-observed_at")[:DIGEST_LINES])
            zone = ZoneInfo(member.forum.timezone)
            lines = [f"- {_line(d, zone)}" for d in found]
            if len(ids) > len(found):
                lines.append(_("… and %(count)d more.") % {"count": len(ids) - len(found)})
            body = "\n\n".join([
                ngettext("%(count)d new deviation in “%(name)s” since the last e-mail:",
                         "%(count)d new deviations in “%(name)s” since the last e-mail:", len(ids)) % {
                    "count": len(ids), "name": view.name},
                "\n".join(lines),
                ngettext("See it in Lägesbild: %(url)s", "See them in Lägesbild: %(url)s", len(ids)) % {
                    "url": settings.LAGESBILD_BASE_URL + reverse("saved-views", kwargs={"forum": member.forum.slug})
                    + "#alerts"},
                _footer(view)])
            subject = ngettext("%(count)d new deviation in “%(name)s”", "%(count)d new deviations in “%(name)s”",
                               len(ids)) % {"count": len(ids), "name": view.name}
            found_digests.append(Digest(view, until, EmailMessage(f"[{member.forum.name}] {subject}", body,
                                                                to=[member.user.email])))
    return found_digests


def digest_sent(digest: Digest) -> None:
    """Mark the digest's alerts told of, so that tomorrow's e-mail does not repeat them."""
    with transaction.atomic():
        Alert.objects.filter(saved_view=digest.view, emailed_at__isnull=True, created_at__lte=digest.until).update(
            emailed_at=digest.until)
        SavedView.objects.filter(pk=digest.view.pk).update(digest_sent_at=digest.until)
