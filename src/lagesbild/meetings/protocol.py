"""The protocol: a snapshot of the meeting taken when it is published, shown as a printable page and
as a PDF (lagesbild/pdf.py).

The snapshot is written in Swedish and holds only what the whole forum may see, since every member
reads the protocol.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from lagesbild import geometry, staticmap
from lagesbild.deviations import services as deviations
from lagesbild.meetings.models import Action, AgendaItem, FollowUp, Meeting
from lagesbild.meetings.services import agenda, in_period
from lagesbild.pdf import ProtocolPDF, draw_map, printable
from lagesbild.places import services as places
from lagesbild.places.models import Place

MAP_POINTS = 3000  # more than this in a period are drawn as the first 3,000; the count says how many


def _when(meeting: Meeting, value: dt.datetime, fmt: str = "j F Y H:i") -> str:
    return date_format(value.astimezone(ZoneInfo(meeting.forum.timezone)), fmt)


def _action(action: Action, latest: dict[int, str], today: dt.date) -> dict[str, Any]:
    """An action as the protocol lists it; `latest` holds each action's latest follow-up."""
    return {
        "id": action.pk, "title": action.title, "organisation": action.organisation.name,
        "responsible": action.responsible.display_name if action.responsible else "",
        "due": date_format(action.due_date, "j F Y"), "status": action.get_status_display(),
        "overdue": action.is_open and action.due_date < today,
        "place": action.place.name if action.place else "",
        "followUp": latest.get(action.pk, ""), "result": action.result,
        "execution": action.get_execution_display() if action.execution else "",
    }


def snapshot(meeting: Meeting, version: int, correction_reason: str = "") -> dict[str, Any]:
    with translation.override("sv"):
        return _snapshot(meeting, version, correction_reason)


def _snapshot(meeting: Meeting, version: int, correction_reason: str) -> dict[str, Any]:
    forum = meeting.forum
    items = []
    decided: list[list[Action]] = []
    followed: set[int] = set()
    for number, view in enumerate(agenda(meeting, viewer=None), start=1):
        item = view.item
        lines: list[str] = []
        if item.kind == AgendaItem.Kind.ACTIONS_DUE:
            for action in view.actions:
                followed.add(action.pk)
                lines.append(_("%(title)s, due %(due)s, %(status)s") % {
                    "title": action.title, "due": date_format(action.due_date, "j F Y"),
                    "status": action.get_status_display().lower()})
        if view.place_count is not None:
            lines.append(ngettext("%(count)d new deviation in the period (%(previous)d in the period before).",
                                  "%(count)d new deviations in the period (%(previous)d in the period before).",
                                  view.place_count.count) % {
                "count": view.place_count.count, "previous": view.place_count.previous})
        for category in view.categories:
            lines.append(_("%(name)s: %(count)d (%(previous)d in the period before)") % {
                "name": category.name, "count": category.count, "previous": category.previous})
        if view.flag is not None:
            lines.append(_("Raised by %(organisation)s.") % {"organisation": view.flag.organisation.name})
        for deviation in view.police:
            marker = deviation.police_flagged_org.name if deviation.police_flagged_org else "-"
            lines.append(_("%(category)s, %(when)s, %(place)s: marked by %(organisation)s on %(marked)s, no report "
                           "recorded") % {
                "category": deviation.category.name, "when": _when(meeting, deviation.observed_at),
                "place": deviation.place_name or "-", "organisation": marker,
                "marked": _when(meeting, deviation.police_flagged_at or deviation.observed_at, "j F Y")})
        items.append({"number": number, "title": item.title, "kind": item.kind, "notes": item.notes,
                      "decision": item.decision, "lines": lines})
        decided.append(view.decided)
    # Actions followed up at the meeting, besides those due; then each one's latest follow-up, in one query.
    followed.update(FollowUp.objects.filter(meeting=meeting).values_list("action_id", flat=True))
    related = ("organisation", "responsible", "place")
    followed_actions = list(Action.objects.filter(pk__in=followed).select_related(*related).order_by("due_date", "pk"))
    new_actions = list(Action.objects.filter(meeting=meeting).select_related(*related))
    latest: dict[int, str] = {}
    mentioned = {a.pk for a in followed_actions + new_actions} | {a.pk for group in decided for a in group}
    for action_id, body in FollowUp.objects.filter(action_id__in=mentioned).order_by("created_at", "pk") \
            .values_list("action_id", "body"):
        latest[action_id] = body
    today = dt.datetime.now(ZoneInfo(forum.timezone)).date()
    for entry, group in zip(items, decided, strict=True):
        entry["actions"] = [_action(a, latest, today) for a in group]
    shared = in_period(deviations.forum_wide_deviations(forum), meeting.period_start, meeting.period_end)
    colours = {c.key: c.color for c in deviations.forum_categories(forum)}
    rows = list(shared.order_by("-observed_at").values_list("lon", "lat", "category__key",
                                                            "category__parent__key")[:MAP_POINTS])
    place_rows = list(Place.objects.filter(forum=forum))
    bounds = geometry.area_bounds(forum.area)
    if bounds is None and rows:
        bounds = (min(r[0] for r in rows), min(r[1] for r in rows), max(r[0] for r in rows), max(r[1] for r in rows))
    return {
        "forum": forum.name,
        "title": meeting.title,
        "version": version,
        "correctionReason": correction_reason,
        "heldAt": _when(meeting, meeting.held_at),
        "location": meeting.location,
        "period": [_when(meeting, meeting.period_start, "j F Y"),
                   _when(meeting, meeting.period_end - dt.timedelta(seconds=1), "j F Y")],
        "organisations": sorted(o.name for o in meeting.attending_organisations.all()),
        "people": sorted(f"{u.display_name}" for u in meeting.attendees.all()),
        "items": items,
        "newActions": [_action(a, latest, today) for a in new_actions],
        "followedUp": [_action(a, latest, today) for a in followed_actions],
        "map": {
            "bbox": list(staticmap.padded(bounds)) if bounds else None,
            "area": forum.area,
            "count": shared.count(),
            "points": [[round(lon, 6), round(lat, 6), colours.get(parent or key, "#555555")]
                       for lon, lat, key, parent in rows],
            "places": [[p.name, places.outline(p, corners=32)] for p in place_rows],
        },
        "publishedAt": _when(meeting, dt.datetime.now(dt.UTC)),
    }


def map_svg(content: dict[str, Any], width: int = 640, height: int = 420) -> str:
    data = content["map"]
    if not data["bbox"]:
        return ""
    frame = staticmap.Frame(tuple(data["bbox"]), width, height)  # type: ignore[arg-type]
    return staticmap.svg(frame, title=_("Map of the period's deviations"), area=data["area"],
                         outlines=[(name, outline) for name, outline in data["places"]],
                         points=[(lon, lat, colour) for lon, lat, colour in data["points"]])


# --- PDF ---------------------------------------------------------------------------------------------------

def pdf_bytes(content: dict[str, Any]) -> bytes:
    with translation.override("sv"):
        return _pdf(content)


def _pdf(content: dict[str, Any]) -> bytes:
    version = _("version")  # not inside the f-string, where makemessages cannot find it
    pdf = ProtocolPDF(f"{_('Protocol')}: {content['title']}", content["forum"],
                      f"{content['forum']} - {content['title']} - {version} {content['version']}")
    width = pdf.epw
    heading, para = pdf.heading, pdf.para
    para(content["forum"])
    para(f"{_('Held')}: {content['heldAt']}" + (f", {content['location']}" if content["location"] else ""))
    para(f"{_('Period reviewed')}: {content['period'][0]} - {content['period'][1]}")
    para(f"{_('Version')} {content['version']}, {_('published')} {content['publishedAt']}")
    if content["correctionReason"]:
        para(f"{_('Correction')}: {content['correctionReason']}", "I")

    heading(_("Attending"))
    para(", ".join(content["organisations"]) or _("No organisations recorded."))
    if content["people"]:
        para(", ".join(content["people"]))

    heading(_("Agenda"))
    for item in content["items"]:
        pdf.set_font("Helvetica", "B", 11)
        pdf.multi_cell(width, 6, printable(f"{item['number']}. {item['title']}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)
        for line in item["lines"]:
            para(f"- {line}")
        if item["notes"]:
            para(f"{_('Notes')}: {item['notes']}")
        if item["decision"]:
            para(f"{_('Decision')}: {item['decision']}", "B")
        for action in item["actions"]:
            para(f"{_('New action')}: {action['title']} ({action['organisation']}, {_('due')} {action['due']})")
        pdf.ln(1)

    for key, title in (("newActions", _("New actions")), ("followedUp", _("Actions followed up"))):
        heading(title)
        if not content[key]:
            para(_("None."))
            continue
        with pdf.table(col_widths=(44, 24, 18, 14), text_align="LEFT", first_row_as_headings=True) as table:
            table.row([printable(_("Action")), printable(_("Responsible")), printable(_("Due")),
                       printable(_("Status"))])
            for action in content[key]:
                responsible = action["organisation"] + (f" ({action['responsible']})" if action["responsible"] else "")
                what = action["title"] + (f" - {action['place']}" if action["place"] else "")
                if action["followUp"]:
                    what += f"\n{_('Latest follow-up')}: {action['followUp']}"
                status = action["status"] + (f" ({_('overdue')})" if action["overdue"] else "")
                if action.get("execution"):  # protocols published before this was recorded lack it
                    status += f"\n{action['execution']}"
                table.row([printable(what), printable(responsible), printable(action["due"]), printable(status)])

    data = content["map"]
    if data["bbox"]:
        if pdf.get_y() > pdf.h - 130:
            pdf.add_page()
        heading(_("Map of the period"))
        para(ngettext("%(count)s deviation that the whole forum can see, with the forum's area and places.",
                      "%(count)s deviations that the whole forum can see, with the forum's area and places.",
                      data["count"]) % {"count": data["count"]})
        draw_map(pdf, data["bbox"], pdf.l_margin, pdf.get_y() + 2, width, 110, area=data["area"],
                 outlines=[(name, outline) for name, outline in data["places"]],
                 points=[(lon, lat, colour) for lon, lat, colour in data["points"]])
    return bytes(pdf.output())
