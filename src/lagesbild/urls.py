from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from lagesbild import views
from lagesbild.api import api
from lagesbild.audit import views as audit_views
from lagesbild.forums.forms import SignInForm

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "logga-in/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True, authentication_form=SignInForm),
        name="login",
    ),
    path("logga-ut/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("f/<slug:forum>/", views.map_page, name="map"),
    path("f/<slug:forum>/logg/", audit_views.log_page, name="audit-log"),
    path("f/<slug:forum>/logg.csv", audit_views.log_csv, name="audit-log-csv"),
    path("api/", api.urls),
    path("drift/", admin.site.urls),  # the Django admin, for operators only
]
