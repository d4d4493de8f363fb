"""Open311 GeoReport v2 for a forum: the deviations as service requests, the categories as services.

Existing Open311 clients (a municipality's fault-report app, a dashboard) read and post with one of
Lägesbild's API tokens as their API key. Everything goes through the same gate as the app: a client sees what
its token's organisation may see, and posts as its token's user, through `deviations.services`.

Open311 asks for names, e-mail and phone numbers with a request. Lägesbild describes places, never people: they
are accepted (so clients that send them work) and never stored, and the answer says so.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild import inputs
from lagesbild.audit import services as audit
from lagesbild.deviations import services as deviations
from lagesbild.deviations.models import Deviation
from lagesbild.errors import InvalidParameter, NotFound
from lagesbild.forums.models import Forum, Membership

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
OPEN = (Deviation.Status.NEW, Deviation.Status.REVIEWED, Deviation.Status.IN_PROGRESS)
CLOSED = (Deviation.Status.RESOLVED, Deviation.Status.DISMISSED)
DEFAULT_DAYS = 90
MAX_SPAN = dt.timedelta(days=90)
MAX_REQUESTS = 1000
FORMATS = {"json": "application/json", "xml": "text/xml"}
# What Open311 clients may send with a request that Lägesbild takes no notice of.
PERSONAL = ("email", "device_id", "account_id", "first_name", "last_name", "phone")


def discovery(base: str) -> dict[str, Any]:
    return {
        "changeset": CHANGESET,
        "contact": _("The safety forum's coordinator"),
        "key_service": _("Ask your forum's coordinator for an API token: it is the api_key."),
        "endpoints": [{"specification": SPECIFICATION, "url": base, "changeset": CHANGESET, "type": "production",
                       "formats": list(FORMATS.values())}],
    }


CHANGESET = "2026-12-01T00:00:00Z"  # when this endpoint last changed in a way clients notice


def services(membership: Membership) -> list[dict[str, Any]]:
    """The forum's categories that can be reported, as Open311 services (the key is the service code)."""
    hidden = deviations.hidden_category_ids(membership.forum)
    return [{"service_code": c.key, "service_name": c.name, "description": c.name, "metadata": False,
             "type": "realtime", "keywords": c.key.replace("_", " "), "group": (c.parent or c).name}
            for c in deviations.forum_categories(membership.forum).order_by("sort_order", "pk") if c.pk not in hidden]


def service_definition(membership: Membership, code: str) -> dict[str, Any]:
    """A service's extra attributes: none (every service has `metadata: false`)."""
    if code not in {s["service_code"] for s in services(membership)}:
        raise NotFound(_("No such service: %(code)s.") % {"code": code[:60]})
    return {"service_code": code, "attributes": []}


def check_jurisdiction(forum: Forum, params: Mapping[str, str]) -> None:
    jurisdiction = params.get("jurisdiction_id")
    if jurisdiction and jurisdiction != forum.slug:
        raise InvalidParameter(_("This endpoint serves the jurisdiction %(slug)s only.") % {"slug": forum.slug},
                               field="jurisdiction_id")


def requests(membership: Membership, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """Service requests newest first: by id, or in a period of at most 90 days (the last 90 by default)."""
    forum = membership.forum
    check_jurisdiction(forum, params)
    queryset = deviations.visible_deviations(membership)
    if params.get("service_request_id"):
        ids = [inputs.parse_id(part.strip(), "service_request_id") for part in
               params["service_request_id"].split(",")[:MAX_REQUESTS] if part.strip()]
        queryset = queryset.filter(pk__in=ids)
    else:
        end = _moment(params.get("end_date"), forum, "end_date") or timezone.now()
        start = _moment(params.get("start_date"), forum, "start_date") or end - dt.timedelta(days=DEFAULT_DAYS)
        if start > end:
            raise InvalidParameter(_("start_date is after end_date."), field="start_date")
        if end - start > MAX_SPAN:
            raise InvalidParameter(_("A search may span at most 90 days."), field="start_date")
        queryset = queryset.filter(reported_at__gte=start, reported_at__lte=end)
        if params.get("service_code"):
            codes = [c.strip() for c in params["service_code"].split(",") if c.strip()]
            queryset = queryset.filter(category_id__in=deviations.category_ids_with_children(forum, codes))
        if params.get("status"):
            wanted = {s.strip() for s in params["status"].split(",") if s.strip()}
            if not wanted <= {"open", "closed"}:
                raise InvalidParameter(_("status is open or closed."), field="status")
            statuses = [*(OPEN if "open" in wanted else ()), *(CLOSED if "closed" in wanted else ())]
            queryset = queryset.filter(status__in=statuses)
    return _as_requests(membership, queryset.order_by("-reported_at", "-pk")[:MAX_REQUESTS])


def request(membership: Membership, request_id: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
    check_jurisdiction(membership.forum, params)
    if not re.fullmatch(r"[1-9][0-9]{0,17}", request_id):  # ASCII digits only ("²" is a digit to isdigit())
        raise NotFound(_("No such service request."))
    deviation = deviations.get_visible_deviation(membership, int(request_id))
    return _as_requests(membership, deviations.visible_deviations(membership).filter(pk=deviation.pk))


def _as_requests(membership: Membership, queryset: QuerySet[Deviation]) -> list[dict[str, Any]]:
    forum = membership.forum
    statuses = dict(Deviation.Status.choices)
    rows = list(queryset.select_related("category", "organisation"))
    restricted = [d.pk for d in rows if d.visibility != Deviation.Visibility.FORUM]
    if restricted:
        audit.record_reads(membership, "deviation", restricted, {"via": "Open311"})
    return [{
        "service_request_id": str(d.pk),
        "status": "open" if d.status in OPEN else "closed",
        "status_notes": str(statuses[d.status]),
        "service_name": d.category.name,
        "service_code": d.category.key,
        "description": d.description,
        "agency_responsible": d.organisation.name,
        "service_notice": "",
        "requested_datetime": _timestamp(d.reported_at, forum),
        "updated_datetime": _timestamp(d.updated_at, forum),
        "expected_datetime": None,
        "address": d.place_name,
        "address_id": "",
        "zipcode": "",
        "lat": round(d.lat, 7),
        "long": round(d.lon, 7),
        "media_url": "",
    } for d in rows]


def post_request(membership: Membership, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """Report a deviation from an Open311 request, as the token's user, now, at lat/long."""
    check_jurisdiction(membership.forum, params)
    code = (params.get("service_code") or "").strip()
    if not code:
        raise InvalidParameter(_("service_code is required."), field="service_code")
    if not params.get("lat") or not params.get("long"):
        raise InvalidParameter(_("lat and long are required: Lägesbild places every deviation on the map."),
                               field="lat" if not params.get("lat") else "long")
    lat = inputs.parse_float(params["lat"], "lat")
    lon = inputs.parse_float(params["long"], "long")
    assert lat is not None and lon is not None
    deviation = deviations.report_deviation(membership, deviations.DeviationInput(
        category=code, lon=lon, lat=lat, observed_at=timezone.now(),
        place_name=(params.get("address_string") or "").strip(),
        description=(params.get("description") or "").strip()))
    notice = _("Reported to the safety forum %(forum)s.") % {"forum": membership.forum.name}
    if any(params.get(name) for name in PERSONAL):
        notice += " " + _("Contact details are not stored: the forum describes places, not people.")
    return [{"service_request_id": str(deviation.pk), "service_notice": notice, "account_id": None}]


def _moment(value: str | None, forum: Forum, field: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(_("%(field)s must be a W3C date and time, e.g. 2026-03-01T00:00:00Z.") % {
            "field": field}, field=field) from None
    if when.tzinfo is None:
        when = inputs.local_to_aware(when, forum.timezone, field)
    return inputs.check_datetime(when, field)


def _timestamp(value: dt.datetime | None, forum: Forum) -> str | None:
    """W3C time with the forum's offset, to the second, as Open311 writes it."""
    if value is None:
        return None
    return value.astimezone(ZoneInfo(forum.timezone)).replace(microsecond=0).isoformat()


# --- Encodings ------------------------------------------------------------------------------------------------

ROOTS = {"services": ("services", "service"), "requests": ("service_requests", "request"),
         "definition": ("service_definition", None), "discovery": ("discovery", None),
         "errors": ("errors", "error")}
PLURALS = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute"}


def to_xml(kind: str, data: Any) -> bytes:
    """Open311's XML: a root element with one child per item, or the object's fields."""
    root_name, item_name = ROOTS[kind]
    root = ET.Element(root_name)
    if item_name:
        for item in data:
            _fill(ET.SubElement(root, item_name), item)
    else:
        _fill(root, data)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _fill(ET.SubElement(element, key), inner)
    elif isinstance(value, list):
        child = PLURALS.get(element.tag, "item")
        for inner in value:
            _fill(ET.SubElement(element, child), inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = NOT_XML.sub("\ufffd", str(value))


# Characters XML 1.0 cannot hold (control characters), which an error may echo from the request.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
