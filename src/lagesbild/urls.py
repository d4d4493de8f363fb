from django.contrib import admin
from django.urls import include, path, register_converter

from lagesbild import basemap_views, views
from lagesbild.alerts import views as alert_views
from lagesbild.analysis import views as analysis_views
from lagesbild.api import api
from lagesbild.audit import views as audit_views
from lagesbild.deviations import views as deviation_views
from lagesbild.forums import views as forum_views
from lagesbild.interop import open311_views
from lagesbild.interop import views as import_views
from lagesbild.live import views as live_views
from lagesbild.meetings import views as meeting_views
from lagesbild.places import views as place_views
from lagesbild.walks import views as walk_views


class IdConverter:
    """An id in a page's address: a positive whole number the database can hold (so a 30-digit id is simply a
    page that does not exist, not a failed query)."""

    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("manifest.webmanifest", views.web_manifest, name="web-manifest"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("basemap/basemap.pmtiles", basemap_views.pmtiles_file, name="basemap-pmtiles"),
    path("basemap/fonts/<str:fontstack>/<int:start>-<int:end>.pbf", basemap_views.glyph_range,
         name="basemap-glyphs"),
    path("konto/inbjudan/<str:key>/", forum_views.accept_invitation, name="accept-invitation"),
    path("konto/", include("allauth.urls")),  # sign-in, sign-out, password reset, two-factor, single sign-on
    path("i18n/", include("django.conf.urls.i18n")),
    path("f/<slug:forum>/", views.map_page, name="map"),
    path("f/<slug:forum>/installningar/", forum_views.settings_page, name="forum-settings"),
    path("f/<slug:forum>/kategorier/", deviation_views.categories_page, name="categories"),
    path("f/<slug:forum>/medlemmar/", forum_views.members_page, name="members"),
    path("f/<slug:forum>/medlemmar/<slug:action>/", forum_views.member_action, name="member-action"),
    path("f/<slug:forum>/platser/", place_views.places_page, name="places"),
    path("f/<slug:forum>/platser/<id:place_id>/", place_views.place_page, name="place"),
    path("f/<slug:forum>/moten/", meeting_views.meetings_page, name="meetings"),
    path("f/<slug:forum>/moten/<id:meeting_id>/", meeting_views.meeting_page, name="meeting"),
    path("f/<slug:forum>/moten/<id:meeting_id>/visning/", meeting_views.present_page, name="meeting-screen"),
    path("f/<slug:forum>/moten/<id:meeting_id>/visning/aktuell.json", meeting_views.present_current,
         name="meeting-screen-current"),
    path("f/<slug:forum>/moten/<id:meeting_id>/protokoll/", meeting_views.protocol_page, name="protocol"),
    path("f/<slug:forum>/moten/<id:meeting_id>/protokoll.pdf", meeting_views.protocol_pdf, name="protocol-pdf"),
    path("f/<slug:forum>/vandringar/", walk_views.walks_page, name="walks"),
    path("f/<slug:forum>/vandringar/<id:walk_id>/", walk_views.walk_page, name="walk"),
    path("f/<slug:forum>/vandringar/<id:walk_id>/protokoll/", walk_views.walk_protocol, name="walk-protocol"),
    path("f/<slug:forum>/vandringar/<id:walk_id>/protokoll.pdf", walk_views.walk_protocol_pdf,
         name="walk-protocol-pdf"),
    path("f/<slug:forum>/atgarder/", meeting_views.actions_page, name="actions"),
    path("f/<slug:forum>/atgarder/<id:action_id>/", meeting_views.action_page, name="action"),
    path("f/<slug:forum>/monster/", analysis_views.patterns_page, name="patterns"),
    path("f/<slug:forum>/monster/<slug:figure>.csv", analysis_views.pattern_csv, name="pattern-csv"),
    path("f/<slug:forum>/import/", import_views.imports_page, name="imports"),
    path("f/<slug:forum>/import/<id:batch_id>/", import_views.import_page, name="import"),
    path("f/<slug:forum>/import/<id:batch_id>/status.json", import_views.import_progress, name="import-progress"),
    path("f/<slug:forum>/import/<id:batch_id>/problem.csv", import_views.import_problems_csv,
         name="import-problems"),
    path("f/<slug:forum>/bevakningar/", alert_views.saved_views_page, name="saved-views"),
    path("f/<slug:forum>/live", live_views.stream, name="live"),
    path("f/<slug:forum>/logg/", audit_views.log_page, name="audit-log"),
    path("f/<slug:forum>/logg.csv", audit_views.log_csv, name="audit-log-csv"),
    # Open311 GeoReport v2, in JSON or XML by the path's ending (docs/open311.md)
    path("api/forums/<slug:forum>/open311/v2/", open311_views.root, name="open311-root"),
    path("api/forums/<slug:forum>/open311/v2/discovery.<str:fmt>", open311_views.discovery,
         name="open311-discovery"),
    path("api/forums/<slug:forum>/open311/v2/services.<str:fmt>", open311_views.services, name="open311-services"),
    path("api/forums/<slug:forum>/open311/v2/services/<str:code>.<str:fmt>", open311_views.service_definition,
         name="open311-service"),
    path("api/forums/<slug:forum>/open311/v2/requests.<str:fmt>", open311_views.requests, name="open311-requests"),
    path("api/forums/<slug:forum>/open311/v2/requests/<str:request_id>.<str:fmt>", open311_views.request,
         name="open311-request"),
    path("api/", api.urls),
    path("drift/", admin.site.urls),  # the Django admin, for operators only
]

# An error from a database that could not be reached is a 503 (try again), not a 500.
handler500 = "lagesbild.views.server_error"
