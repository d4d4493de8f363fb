"""A walk's protocol: who walked, where (the planned route and the walked track), what the group found at each
stop, and what became of it, as a page and as a PDF.

It is built when read, for the reader: a finding's deviation is named only to those who may see it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from lagesbild import geometry, staticmap
from lagesbild.forums.models import Membership
from lagesbild.pdf import ProtocolPDF, draw_map, printable
from lagesbild.walks import services
from lagesbild.walks.models import Walk, WalkCheck

ROUTE_COLOUR = "#1d4ed8"  # planned: blue, dashed
TRACK_COLOUR = "#0f766e"  # walked: teal
MAP_TRACK_POINTS = 2000  # a longer track is drawn through every n-th point


def _when(walk: Walk, value: dt.datetime | None, fmt: str = "j F Y H:i") -> str:
    return date_format(value.astimezone(ZoneInfo(walk.forum.timezone)), fmt) if value else ""


def content(walk: Walk, membership: Membership) -> dict[str, Any]:
    """Everything the protocol shows, in the active language, for this member."""
    stops = services.stops_of(walk)
    visible = services.visible_findings(membership, [c for s in stops for c in s.checks.all()])
    categories = services.usable_categories(membership)
    order = {aspect: i for i, aspect in enumerate(services.ASPECTS)}
    stops_out, proposals = [], []
    problems = 0
    for number, stop in enumerate(stops, start=1):
        checks = []
        for check in sorted(stop.checks.all(), key=lambda c: order.get(c.aspect, 99)):
            problem = check.assessment == WalkCheck.Assessment.PROBLEM
            problems += problem
            if check.deviation_id in visible:  # what it is now, for those who may see it
                category: Any = visible[check.deviation_id]
            elif check.recorded_at is None and problem:  # what it will be reported under
                category = check.category or services.suggested_category(categories, check.aspect)
            else:
                category = None
            checks.append({
                "aspect": str(WalkCheck.Aspect(check.aspect).label),
                "assessment": str(WalkCheck.Assessment(check.assessment).label), "problem": problem,
                "note": check.note, "proposal": check.proposal, "category": category.name if category else "",
                "recorded": check.recorded_at is not None,
                "deviation": check.deviation_id if check.deviation_id in visible else None,
                "raised": check.recorded_at is not None and bool(check.proposal),
            })
            if check.proposal:
                proposals.append({"stop": stop.name, "number": number, "text": check.proposal,
                                  "raised": check.recorded_at is not None})
        stops_out.append({"number": number, "name": stop.name, "lon": stop.lon, "lat": stop.lat, "checks": checks})
    track = walk.track or []
    drawn_track: list[list[list[float]]] = []
    for line in services.track_lines(track):
        step = max(1, len(line) // MAP_TRACK_POINTS)
        drawn_track.append(line[::step] + ([line[-1]] if (len(line) - 1) % step else []))
    route: list[list[float]] = [[stop.lon, stop.lat] for stop in stops]
    coordinates = route + [c for line in drawn_track for c in line]
    if coordinates:
        lons, lats = [c[0] for c in coordinates], [c[1] for c in coordinates]
        bounds: geometry.BBox | None = (min(lons), min(lats), max(lons), max(lats))
    else:
        bounds = geometry.area_bounds(walk.forum.area)
    return {
        "forum": walk.forum.name, "title": walk.title, "heading": services.walk_heading(walk.title),
        "organisation": walk.organisation.name,
        "meetingPoint": walk.meeting_point, "state": walk.get_state_display(),
        "plannedAt": _when(walk, walk.planned_at), "startedAt": _when(walk, walk.started_at),
        "endedAt": _when(walk, walk.ended_at, "H:i" if walk.started_at and walk.ended_at
                         and walk.ended_at - walk.started_at < dt.timedelta(hours=20) else "j F Y H:i"),
        "participants": [{"name": p.name, "affiliation": p.affiliation} for p in walk.participants.all()],
        "summary": walk.summary, "stops": stops_out, "problems": problems, "proposals": proposals,
        "trackPoints": len(track), "trackLength": round(services.track_length_m(track)),
        "map": {"bbox": list(staticmap.padded(bounds)) if bounds else None, "area": walk.forum.area,
                "route": route, "track": drawn_track},
        "madeAt": _when(walk, dt.datetime.now(dt.UTC)),
    }


def _lines(data: dict[str, Any]) -> list[tuple[list[list[float]], str, bool]]:
    # The track first, so that the planned route stays visible, dashed, where the group kept to it.
    return [*[(line, TRACK_COLOUR, False) for line in data["track"]], (data["route"], ROUTE_COLOUR, True)]


def map_svg(content: dict[str, Any], width: int = 640, height: int = 420) -> str:
    data = content["map"]
    if not data["bbox"]:
        return ""
    frame = staticmap.Frame(tuple(data["bbox"]), width, height)  # type: ignore[arg-type]
    return staticmap.svg(frame, title=_("Map of the walk: the planned route, the walked track and the stops"),
                         area=data["area"], lines=_lines(data),
                         circles=[(s["lon"], s["lat"], 0, str(s["number"]), s["name"]) for s in content["stops"]])


def pdf_bytes(content: dict[str, Any]) -> bytes:
    """The protocol as a PDF, in the language active when `content` was made."""
    title = content["heading"]
    pdf = ProtocolPDF(title, content["forum"], f"{content['forum']} - {content['title']}")
    width = pdf.epw
    heading, para = pdf.heading, pdf.para
    para(content["forum"])
    para(_("Arranged by: %(organisation)s") % {"organisation": content["organisation"]})
    planned = _("Planned for: %(when)s") % {"when": content["plannedAt"]}
    if content["meetingPoint"]:
        planned += ", " + _("meeting point: %(place)s") % {"place": content["meetingPoint"]}
    para(planned)
    if content["startedAt"]:
        para(_("Walked: %(start)s") % {"start": content["startedAt"]}
             + (f" - {content['endedAt']}" if content["endedAt"] else ""))
    if content["trackPoints"]:
        para(_("Recorded track: %(length)s m, %(points)s points.") % {
            "length": content["trackLength"], "points": content["trackPoints"]})
    para(_("Made %(when)s") % {"when": content["madeAt"]}, "I")

    heading(_("Participants"))
    para(", ".join(p["name"] + (f" ({p['affiliation']})" if p["affiliation"] else "")
                   for p in content["participants"]) or _("No participants recorded."))
    if content["summary"]:
        heading(_("Summary"))
        para(content["summary"])

    heading(_("Stops and findings"))
    if not content["stops"]:
        para(_("No stops."))
    for stop in content["stops"]:
        pdf.set_font("Helvetica", "B", 11)
        pdf.multi_cell(width, 6, printable(f"{stop['number']}. {stop['name']}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)
        if not stop["checks"]:
            para(_("Nothing assessed."), "I")
            continue
        with pdf.table(col_widths=(26, 16, 58), text_align="LEFT", first_row_as_headings=True) as table:
            table.row([printable(_("Checklist")), printable(_("Assessment")), printable(_("What the group saw"))])
            for check in stop["checks"]:
                seen = check["note"]
                if check["proposal"]:
                    seen += "\n" + _("Proposed action: %(proposal)s") % {"proposal": check["proposal"]}
                if check["deviation"]:
                    seen += "\n" + _("Recorded as deviation #%(id)s (%(category)s)") % {
                        "id": check["deviation"], "category": check["category"]}
                table.row([printable(check["aspect"]), printable(check["assessment"]), printable(seen)])
        pdf.ln(1)

    heading(_("Proposed actions"))
    if not content["proposals"]:
        para(_("None."))
    for proposal in content["proposals"]:
        state = _("raised for the next meeting") if proposal["raised"] else _("not yet raised")
        para(f"- {proposal['number']}. {proposal['stop']}: {proposal['text']} ({state})")

    data = content["map"]
    if data["bbox"]:
        if pdf.get_y() > pdf.h - 130:
            pdf.add_page()
        heading(_("Map"))
        para(_("The planned route dashed in blue, the walked track in green, the stops numbered."))
        draw_map(pdf, data["bbox"], pdf.l_margin, pdf.get_y() + 2, width, 110, area=data["area"],
                 lines=_lines(data), markers=[(s["lon"], s["lat"], str(s["number"])) for s in content["stops"]])
    return bytes(pdf.output())
