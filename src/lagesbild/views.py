"""Pages. Thin: they look up the member and render; the map page's script calls the API."""

from __future__ import annotations

import functools
import hashlib
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import defaults
from django.views.decorators.cache import never_cache

from lagesbild import basemap, geocoder
from lagesbild.alerts.models import SavedView
from lagesbild.deviations.models import Deviation
from lagesbild.deviations.photos import ACCEPTED_CONTENT_TYPES
from lagesbild.deviations.services import forum_categories, hidden_category_ids
from lagesbild.errors import NotFound
from lagesbild.forums.services import membership_for, memberships_of
from lagesbild.interop.export import XLSX_MAX_ROWS
from lagesbild.middleware import database_unreachable


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused form or API call without a valid CSRF token: say so plainly, change nothing, log it."""
    message = record_csrf_refusal(request)
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "csrf", "message": message, "field": None}}, status=403)
    return render(request, "403.html", {"message": message}, status=403)


def record_csrf_refusal(request: HttpRequest) -> str:
    """Log a request refused for a missing or wrong CSRF token; return the explanation to show."""
    from lagesbild.audit.models import AuditEvent
    from lagesbild.audit.services import client_ip, keep_refusal

    keep_refusal(AuditEvent(
        actor=request.user if request.user.is_authenticated else None,
        action=AuditEvent.Action.REFUSED, object_type="request", object_id=None,
        changes={"reason": "csrf", "path": request.path[:200]}, ip=client_ip.get()))
    return _("The page had expired or the request did not come from Lägesbild, so nothing was changed. "
             "Reload the page and try again.")


def web_manifest(request: HttpRequest) -> JsonResponse:
    """What a phone needs to install Lägesbild as an app (Add to Home screen)."""
    icons = [{"src": static(f"lagesbild/icons/{name}-{size}.png"), "sizes": f"{size}x{size}", "type": "image/png",
              "purpose": purpose}
             for name, purpose in (("icon", "any"), ("maskable", "maskable")) for size in (192, 512)]
    manifest = {
        "name": "Lägesbild", "short_name": "Lägesbild", "lang": "sv", "dir": "ltr",
        "description": _("The safety forum's shared situational picture: report and see deviations on the map."),
        "start_url": "/", "scope": "/", "display": "standalone", "orientation": "any",
        "background_color": "#ffffff", "theme_color": "#14213d", "icons": icons,
    }
    return JsonResponse(manifest, content_type="application/manifest+json", json_dumps_params={"ensure_ascii": False})


def service_worker(request: HttpRequest) -> HttpResponse:
    """The service worker, from the site's root so that it may serve every page (see templates/lagesbild/sw.js)."""
    # Like every page it is marked no-store (SecurityHeadersMiddleware), so a new version is used at once.
    kept_tiles = basemap.configured()
    return render(request, "lagesbild/sw.js", {
        "version": _app_version(),
        # The tile host whose tiles of a forum's area a member may keep (docs/deployment.md), or none.
        "tile_origin": kept_tiles.hosts[0] if settings.LAGESBILD_TILE_OFFLINE_ZOOM and kept_tiles.hosts else "",
    }, content_type="text/javascript; charset=utf-8")


@functools.cache
def _app_version() -> str:
    """A short fingerprint of the app's own scripts, styles and templates: a new release names new caches."""
    digest = hashlib.sha256()
    for folder in (Path(__file__).parent / "static" / "lagesbild", Path(__file__).parent / "templates"):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@never_cache
def server_error(request: HttpRequest) -> HttpResponse:
    """An uncaught error: 503 when the database could not be reached (PostgreSQL restarting, say), so that
    clients and the map know to try again and a member reads that nothing was saved; Django's 500 otherwise.

    Rendered without the request's context: that would ask the database for the member again."""
    error = sys.exc_info()[1]
    if error is None or not database_unreachable(error):
        return defaults.server_error(request)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"error": {"code": "unavailable", "field": None, "message": str(_(
            "Lägesbild cannot reach its database just now. Nothing was saved. Try again in a minute."))}},
            status=503)
    else:
        response = HttpResponse(loader.render_to_string("503.html"), status=503)
    response["Retry-After"] = "10"
    return response


def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the app and its database answer; 503 otherwise. For load balancers and monitoring."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": connection.vendor})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = list(memberships_of(request.user))  # type: ignore[arg-type]
    if len(memberships) == 1:
        return redirect("map", forum=memberships[0].forum.slug)
    return render(request, "lagesbild/home.html", {"memberships": memberships})


def ui_strings() -> dict[str, str]:
    """Texts the map's script shows itself; everything else is in the template."""
    return {
        "shown": _("%(shown)s of %(total)s deviations in view"),
        "shownAll": _("%(total)s deviations in view"),
        "none": _("No deviations match the filter in this view."),
        "aggregated": _(
            "The map shows them as counts per area; zoom in or narrow the filter to see each one. "
            "The list shows the newest %(shown)s."
        ),
        "loadError": _("The deviations could not be loaded. Check your connection and try again."),
        "saved": _("The deviation was saved."),
        "captureKept": _("No network: the report is kept on this device and sent when the network is back."),
        "capturesSent": _("%(count)s reports kept on this device were sent."),
        "captureSummary": _("%(waiting)s waiting for the network, %(sent)s sent, %(refused)s refused."),
        "capture_waiting": _("waiting"),
        "capture_sent": _("sent"),
        "captureRefused": _("refused: %(reason)s"),
        "captureShow": _("Show"),
        "captureRemove": _("Remove"),
        "captureSignIn": _("Sign in again to send the reports kept on this device."),
        "captureDiscard": _("Remove this report from the device without sending it?"),
        "withdrawn": _("The deviation was withdrawn."),
        "liveReported": _("A new deviation was reported."),
        "offlineMapAlready": _("The map is already kept on this device (%(kept)s tiles). Keep it again to bring it "
                               "up to date."),
        "offlineMapNoArea": _("The forum has no area drawn, so there is no map area to keep."),
        "offlineMapTooLarge": _("The forum's area is too large to keep on the device."),
        "offlineMapKeeping": _("Keeping the map: %(done)s of %(total)s tiles…"),
        "offlineMapKept": _("The map of the forum's area is kept on this device (%(kept)s tiles, down to zoom "
                            "level %(zoom)s)."),
        "offlineMapPartly": _("%(kept)s tiles of the map are kept; %(failed)s could not be fetched. Try again to "
                              "fetch the rest."),
        "required": _("required"),
        "yes": _("Yes"),
        "no": _("No"),
        "notGiven": _("Not given"),
        "roundActive": _("Round under way: %(name)s, started %(started)s. Reports on it from this device: %(count)s."),
        "roundDefaultName": _("Round %(when)s"),
        "roundStarted": _("The round %(name)s has started. Your reports now belong to it."),
        "roundEnded": _("The round %(name)s has ended, with %(count)s reports from this device."),
        "liveGone": _("The deviation you had open was withdrawn, or you may no longer see it."),
        "liveChangedElsewhere": _("Someone else changed this deviation. Open it again to see the change."),
        "liveOn": _("The map updates as deviations are reported."),
        "liveOff": _("The map is not updating right now. It tries again by itself."),
        "confirmWithdraw": _("Withdraw this deviation? It disappears from the picture for everyone."),
        "positionChosen": _("Position: %(lat)s, %(lon)s"),
        "lineChosen": _("A line with %(count)s corners"),
        "areaChosen": _("An area with %(count)s corners"),
        "cornersLine": _("%(count)s corners. A line needs at least 2."),
        "cornersArea": _("%(count)s corners. An area needs at least 3."),
        "positionMissing": _("Choose a position on the map first."),
        "gpsError": _("Your position could not be found. Click on the map instead."),
        "fixErrors": _("The deviation was not saved. Correct the following:"),
        "networkError": _("Nothing was saved: the server could not be reached. Try again."),
        "privacyConfirm": _("Check the text. To save it as it is anyway, save again."),
        "privacyBlocked": _("This forum does not accept personal data in free text. Remove it to save."),
        "changesSavedPhotosNot": _("Your changes were saved, but the photos were not added:"),
        "noDescription": _("No description."),
        "policeNone": _("Not marked to be reported to the police."),
        "policeFlagged": _("To report to the police: marked by %(organisation)s on %(when)s. No report recorded "
                           "yet."),
        "policeReported": _("Reported to the police, reference %(reference)s (recorded %(when)s)."),
        "policeSaved": _("Saved."),
        "handOffState": _("Passed to %(system)s on %(when)s (their id %(id)s). Status there: %(status)s."),
        "handOffNotes": _("They say: %(notes)s"),
        "handOffChecked": _("Last asked %(when)s."),
        "handOffSend": _("Send to %(system)s"),
        "handOffSent": _("Sent to the fault-report system."),
        "noPlaceName": _("No place given: see the map."),
        "noComments": _("No comments yet."),
        "statusChanged": _("The status was changed."),
        "searchPlace": _("Place in the forum"),
        "searchPlaceNameOne": ngettext("Place name of %(count)s deviation", "Place name of %(count)s deviations", 1),
        "searchPlaceNameMany": ngettext("Place name of %(count)s deviation", "Place name of %(count)s deviations", 2),
        "searchAddress": _("Address"),
        "searchCount": _("Results: %(count)s."),
        "searchNone": _("Nothing found."),
        "searching": _("Searching…"),
        "searchTooShort": _("Type at least 2 characters to search."),
        "searchAskAddresses": _("Press Enter to search addresses too."),
        "searchAddressesUnavailable": _("The address search does not answer just now; places and place names are "
                                        "shown."),
        "searchError": _("The search could not be done. Check your connection and try again."),
        "searchShowing": _("Showing %(label)s."),
        "exportTooLarge": _("An Excel sheet holds at most %(max)s rows, and the filter matches %(count)s. Narrow "
                            "the filter, or export CSV."),
        # MapLibre's own controls
        "NavigationControl.ZoomIn": _("Zoom in"),
        "NavigationControl.ZoomOut": _("Zoom out"),
        "AttributionControl.ToggleAttribution": _("Show or hide map sources"),
        "Map.Title": _("Map"),
        "Marker.Title": _("Chosen position"),
    }


def field_labels() -> dict[str, str]:
    """Names of the fields a change history mentions, in the person's language."""
    names = ["category", "lon", "lat", "observed_at", "observed_until", "place_name", "description", "severity",
             "visibility", "status", "shape"]
    labels = {name: str(getattr(Deviation._meta.get_field(name), "verbose_name", name)) for name in names}
    labels["shared_with"] = _("Organisations that may see it")
    labels["comment"] = _("comment")
    labels["photos"] = _("photos")
    return labels


@login_required
def map_page(request: HttpRequest, forum: str) -> HttpResponse:
    try:
        membership = membership_for(request.user, forum)
    except NotFound:
        return render(request, "404.html", {"message": _("No such forum.")}, status=404)
    timezone.activate(ZoneInfo(membership.forum.timezone))  # ForumTimeZoneMiddleware deactivates it
    categories = list(forum_categories(membership.forum))
    config = {
        "forum": membership.forum.slug,
        "api": reverse("api:api-root").rstrip("/") + f"/forums/{membership.forum.slug}",
        "basemap": basemap.client_config(),
        "pointLimit": settings.LAGESBILD_MAP_POINT_LIMIT,
        "workerUrl": settings.STATIC_URL + "vendor/maplibre-gl/maplibre-gl-csp-worker.js",
        "organisation": membership.organisation_id,
        "canReport": membership.can_report,
        "language": request.LANGUAGE_CODE,
        "timeZone": membership.forum.timezone,  # times are shown in the forum's zone, as on every page
        "user": membership.user_id,  # reports kept on a shared device are sent only by whoever made them
        "xlsxMaxRows": XLSX_MAX_ROWS,
        "liveUrl": reverse("live", kwargs={"forum": membership.forum.slug}),
    }
    return render(request, "lagesbild/map.html", {
        "membership": membership,
        "forum": membership.forum,
        "memberships": memberships_of(request.user),  # type: ignore[arg-type]
        "category_groups": [
            (parent, [c for c in categories if c.parent_id == parent.pk])
            for parent in categories if parent.parent_id is None
        ],
        "organisations": membership.forum.organisations.all(),
        "hidden_categories": hidden_category_ids(membership.forum),
        "statuses": Deviation.Status.choices,
        "frequencies": SavedView.Frequency.choices,
        "severities": Deviation.Severity.choices,
        "visibilities": Deviation.Visibility.choices,
        "photo_types": ACCEPTED_CONTENT_TYPES,
        "photo_max_mb": settings.LAGESBILD_PHOTO_MAX_BYTES // 2**20,
        "config": config,
        "address_search": geocoder.configured(),
        "strings": {**ui_strings(), "fields": field_labels()},
    })
