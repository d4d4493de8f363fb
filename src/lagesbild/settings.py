"""Django settings, read from LAGESBILD_* environment variables.

Every setting an operator may need to change is an environment variable, so the same code runs on a
laptop (SQLite under ./var/) and in production (PostgreSQL + PostGIS) without edits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

PACKAGE_DIR = Path(__file__).resolve().parent
# The working directory holds var/ (database, uploads) and node_modules/ (front-end assets).
PROJECT_DIR = Path(os.environ.get("LAGESBILD_PROJECT_DIR", Path.cwd())).resolve()
VAR_DIR = Path(os.environ.get("LAGESBILD_VAR_DIR", PROJECT_DIR / "var")).resolve()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("LAGESBILD_DEBUG", False)
_secret = os.environ.get("LAGESBILD_SECRET_KEY", "").strip()
if not _secret:
    if not DEBUG:
        # Sessions, password-reset links and CSRF tokens are signed with this key: a known key would let
        # anyone forge them. `make run` keeps a random key for the local demo in var/secret_key.
        raise ImproperlyConfigured(
            "LAGESBILD_SECRET_KEY is not set. Set it to a long random value, for example the output of "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(50))'`, and keep it secret "
            "(see docs/deployment.md). Only for development on your own machine, LAGESBILD_DEBUG=true "
            "runs without one.")
    _secret = "insecure-local-development-key"  # noqa: S105 - DEBUG only, never served in production
SECRET_KEY = _secret

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("LAGESBILD_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("LAGESBILD_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before django-tasks-db: its `db_worker` command is replaced by the forums app's (lagesbild.task_queue).
    "lagesbild.forums",
    "django_tasks",
    "django_tasks_db",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "lagesbild.deviations",
    "lagesbild.places",
    "lagesbild.meetings",
    "lagesbild.analysis",
    "lagesbild.audit",
    "lagesbild.interop",
    "lagesbild.alerts",
    "lagesbild.live",
    "lagesbild.walks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "lagesbild.middleware.SecurityHeadersMiddleware",
    "lagesbild.middleware.CompressionMiddleware",  # compresses what the middleware below it and views answer
    "lagesbild.middleware.StaticFilesMiddleware",  # WhiteNoise
    "lagesbild.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "lagesbild.middleware.ApiErrorsAsJsonMiddleware",
    "lagesbild.middleware.UnreadableRequestMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "lagesbild.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "lagesbild.middleware.TwoFactorRequiredMiddleware",
    "lagesbild.middleware.ForumTimeZoneMiddleware",
    "lagesbild.middleware.WriteTransactionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "lagesbild.urls"
WSGI_APPLICATION = "lagesbild.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
# One variable chooses the backend: sqlite:///path or postgres://user:pass@host:port/name.
DATABASE_URL = os.environ.get("LAGESBILD_DATABASE_URL") or f"sqlite:///{VAR_DIR / 'lagesbild.sqlite3'}"
# Connections are kept a minute, and checked when a request takes one up again: after PostgreSQL restarts, a
# kept connection is dead, and the request opens a new one instead of failing.
_db: dict[str, Any] = dict(dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True))
if _db["ENGINE"] == "django.db.backends.sqlite3":
    Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db["OPTIONS"] = {
        # WAL lets the map read while someone reports; IMMEDIATE avoids "database is locked" upgrades.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        "transaction_mode": "IMMEDIATE",
    }
    _db["CONN_MAX_AGE"] = 0
    # Django warns that SQLite builds an index without its INCLUDE columns (deviations.models); after every
    # migrate spatial_index.ensure_spatial_index puts them at the end of the index's key instead
    # (tests/test_deviation_services.py holds them so).
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
    # Tests run on a real file, not SQLite's in-memory database.
    _db["TEST"] = {"NAME": os.environ.get("LAGESBILD_TEST_SQLITE", str(VAR_DIR / "test.sqlite3"))}
DATABASES = {"default": _db}
# The cache holds sign-in rate limits, so it must be shared by every app process: the database serves.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "lagesbild_cache"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "forums.User"
# Argon2 for new and changed passwords; older hashes still verify and are upgraded at the next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"

# --- Sign-in (django-allauth) ----------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "lagesbild.forums.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "lagesbild.forums.adapters.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"  # people join by invitation, not by signing up
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False  # no mail to addresses that have no account: nobody can use us to spam
# Guessing: at most LAGESBILD_LOGIN_ATTEMPTS wrong passwords per address in 15 minutes, 30 per IP.
ACCOUNT_RATE_LIMITS = {
    "login_failed": f"30/15m/ip,{int(os.environ.get('LAGESBILD_LOGIN_ATTEMPTS', 5))}/15m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Lägesbild"
# Single sign-on for municipalities through OpenID Connect, when configured.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_PROVIDERS: dict[str, Any] = {}
if os.environ.get("LAGESBILD_OIDC_SERVER_URL"):
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [{
            "provider_id": os.environ.get("LAGESBILD_OIDC_ID", "kommun"),
            "name": os.environ.get("LAGESBILD_OIDC_NAME", "Kommunens inloggning"),
            "client_id": os.environ["LAGESBILD_OIDC_CLIENT_ID"],
            "secret": os.environ.get("LAGESBILD_OIDC_SECRET", ""),
            "settings": {"server_url": os.environ["LAGESBILD_OIDC_SERVER_URL"]},
        }],
    }

EMAIL_BACKEND = os.environ.get("LAGESBILD_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("LAGESBILD_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("LAGESBILD_EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("LAGESBILD_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("LAGESBILD_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("LAGESBILD_EMAIL_TLS", False)
# Links in e-mails sent from the background worker, which has no request to take the address from.
LAGESBILD_BASE_URL = os.environ.get("LAGESBILD_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Reminders and digests are sent by a background worker (`lagesbild db_worker`) from a queue in the
# database, so a slow mail server never holds up a page. LAGESBILD_TASKS=immediate runs them at once.
TASKS = {
    "default": {
        "BACKEND": (
            "django_tasks.backends.immediate.ImmediateBackend"
            if os.environ.get("LAGESBILD_TASKS") == "immediate"
            else "django_tasks_db.DatabaseBackend"
        ),
        "QUEUES": ["default"],
    }
}
DEFAULT_FROM_EMAIL = os.environ.get("LAGESBILD_EMAIL_FROM", "Lägesbild <noreply@localhost>")

# --- Language and time ------------------------------------------------------------------------------
LANGUAGE_CODE = "sv"
LANGUAGES = [("sv", _("Swedish")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Europe/Stockholm"  # shown to people; the database stores UTC
USE_TZ = True

# --- Files ----------------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every start without it
NODE_MODULES = Path(os.environ.get("LAGESBILD_NODE_MODULES", PROJECT_DIR / "node_modules"))
# Front-end libraries come from npm (package.json) and are served as they are: no CDN, no bundler.
STATICFILES_DIRS = [
    PACKAGE_DIR / "static",
    ("vendor/maplibre-gl", NODE_MODULES / "maplibre-gl" / "dist"),
    ("vendor/pmtiles", NODE_MODULES / "pmtiles" / "dist"),
    ("vendor/protomaps-basemaps", NODE_MODULES / "@protomaps" / "basemaps" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Photos are never served as public media: a view checks visibility first.
MEDIA_ROOT = Path(os.environ.get("LAGESBILD_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media-not-public/"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LAGESBILD_PHOTO_MAX_BYTES = int(os.environ.get("LAGESBILD_PHOTO_MAX_BYTES", 15 * 1024 * 1024))
LAGESBILD_PHOTOS_PER_DEVIATION = int(os.environ.get("LAGESBILD_PHOTOS_PER_DEVIATION", 6))
# Imports: the largest file (a million rows of CSV is about 200 MB) and the most rows, in one batch.
LAGESBILD_IMPORT_MAX_MB = int(os.environ.get("LAGESBILD_IMPORT_MAX_MB", 500))
LAGESBILD_IMPORT_MAX_ROWS = int(os.environ.get("LAGESBILD_IMPORT_MAX_ROWS", 2_000_000))
# Allow a multipart request with several full-size photos through Django's own limits.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Map ------------------------------------------------------------------------------------------------
# The basemap (lagesbild/basemap.py): a PMTiles file served by Lägesbild itself if LAGESBILD_PMTILES_PATH is set;
# otherwise raster tiles from LAGESBILD_TILE_URL (XYZ, or WMTS in REST form); empty for none.
LAGESBILD_PMTILES_PATH = os.environ.get("LAGESBILD_PMTILES_PATH", "")
LAGESBILD_TILE_URL = os.environ.get("LAGESBILD_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
LAGESBILD_TILE_ATTRIBUTION = os.environ.get(
    "LAGESBILD_TILE_ATTRIBUTION",
    "© OpenStreetMap contributors, Protomaps" if LAGESBILD_PMTILES_PATH else "© OpenStreetMap contributors",
)
LAGESBILD_TILE_MAXZOOM = int(os.environ.get("LAGESBILD_TILE_MAXZOOM", 19))
# Raster basemap tiles of a forum's area that a member may keep on the device for use without network, down to
# this zoom (0: not offered). Only for a tile server whose terms allow it: OpenStreetMap's do not
# (docs/deployment.md).
LAGESBILD_TILE_OFFLINE_ZOOM = int(os.environ.get("LAGESBILD_TILE_OFFLINE_ZOOM", 0))
# The small maps drawn on the server (patterns, place page, protocol PDF) fetch raster tiles themselves and keep
# them this many days (basemap_picture.py).
LAGESBILD_TILE_CACHE_DIR = os.environ.get("LAGESBILD_TILE_CACHE_DIR", str(VAR_DIR / "tile-cache"))
LAGESBILD_TILE_CACHE_DAYS = int(os.environ.get("LAGESBILD_TILE_CACHE_DAYS", 30))
# Address search on the map (geocoder.py): a Nominatim- or Photon-compatible search URL, asked by the server so
# that the geocoder never learns who searches. Empty (the default): the search finds places and place names only.
LAGESBILD_GEOCODER_URL = os.environ.get("LAGESBILD_GEOCODER_URL", "")
LAGESBILD_GEOCODER_KIND = os.environ.get("LAGESBILD_GEOCODER_KIND", "nominatim")
# Seconds between two requests to the geocoder from one process: Nominatim's public server allows one a second;
# a geocoder of your own may be asked faster.
LAGESBILD_GEOCODER_INTERVAL = float(os.environ.get("LAGESBILD_GEOCODER_INTERVAL", 1.0))
if LAGESBILD_GEOCODER_KIND not in ("nominatim", "photon"):
    raise ImproperlyConfigured(f"LAGESBILD_GEOCODER_KIND must be nominatim or photon, not {LAGESBILD_GEOCODER_KIND!r}")
# The map shows single points up to this many matches in view; past it, grid aggregates.
LAGESBILD_MAP_POINT_LIMIT = int(os.environ.get("LAGESBILD_MAP_POINT_LIMIT", 3000))
# Each app process keeps the map's recent lists, aggregates and tiles up to this many MB each (0: none, so every
# request is built afresh, as the benchmarks measure it).
LAGESBILD_KEPT_MB = float(os.environ.get("LAGESBILD_KEPT_MB", 32))
# The live picture (docs/deployment.md): open maps one app process follows at most, and per member; a
# comment every so many seconds keeps proxies from closing a quiet stream.
LAGESBILD_LIVE_MAX_CONNECTIONS = int(os.environ.get("LAGESBILD_LIVE_MAX_CONNECTIONS", 100))
LAGESBILD_LIVE_MAX_PER_USER = int(os.environ.get("LAGESBILD_LIVE_MAX_PER_USER", 10))
LAGESBILD_LIVE_KEEPALIVE_SECONDS = float(os.environ.get("LAGESBILD_LIVE_KEEPALIVE_SECONDS", 15))

# --- Security -------------------------------------------------------------------------------------------
# A session ends after this long without activity; every request moves the end forward.
SESSION_COOKIE_AGE = int(os.environ.get("LAGESBILD_SESSION_IDLE_MINUTES", 120)) * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "lagesbild.views.csrf_failure"
SESSION_COOKIE_SECURE = env_bool("LAGESBILD_SECURE_COOKIES", not DEBUG and env_bool("LAGESBILD_HTTPS", False))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("LAGESBILD_HTTPS", False):
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("LAGESBILD_HSTS_SUBDOMAINS", True)
    # Asking browsers' built-in preload list to include the domain binds every site on it; the operator decides.
    SECURE_HSTS_PRELOAD = env_bool("LAGESBILD_HSTS_PRELOAD", False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Plain HTTP is sent to HTTPS, except the load balancer's health check.
    SECURE_SSL_REDIRECT = env_bool("LAGESBILD_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# How many reverse proxies in front of the app add to X-Forwarded-For; 0 trusts none (the audit log then
# records REMOTE_ADDR).
LAGESBILD_PROXY_COUNT = int(os.environ.get("LAGESBILD_PROXY_COUNT", 0))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LAGESBILD_LOG_LEVEL", "INFO")},
    # fontTools reports every glyph subset it makes for a PDF at INFO.
    "loggers": {"fontTools": {"level": "WARNING"}},
}
