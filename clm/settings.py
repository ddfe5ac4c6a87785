"""CLM settings: one file, configured only through environment variables.

With no variable set, CLM runs on embedded defaults (a SQLite file and a filesystem
Celery broker under the data folder), so a fresh machine needs no services.
"""

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
DATA_DIR = Path(env.str("CLM_DATA_DIR", default=str(BASE_DIR / "data")))

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set (or DEBUG=1 for local development).")
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - only ever used with DEBUG=1

# Fernet keys for secrets at rest, newest first (clm.base.crypto); DEBUG without any derives one from SECRET_KEY.
CLM_ENCRYPTION_KEYS = env.list("CLM_ENCRYPTION_KEYS", default=[])
if not CLM_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("CLM_ENCRYPTION_KEYS must be set (or DEBUG=1 for local development): SOURCES.md.")
    CLM_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "rest_framework_api_key",
    "django_celery_beat",
    "simple_history",
    "axes",
    "clm.base",
    "clm",
    "lifecycle",
    "lifecycle.sources",
    "campaigns",
    "campaigns.activation",
    "metrics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After the messages (it tells why a session ended); LoginRequiredMiddleware acts later, in process_view.
    "clm.middleware.SessionTimeoutMiddleware",
    "clm.middleware.RoleRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Records the logged-in user on the audit history of lifecycle models, stages, rules and channels.
    "simple_history.middleware.HistoryRequestMiddleware",
    # Turns a database lost in a view into 503 (process_exception; the handler500 view does it for middleware).
    "clm.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: turns a lockout flagged during authentication into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clm.urls"
WSGI_APPLICATION = "clm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'clm.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL lets readers run beside the one writer, and
    # IMMEDIATE transactions wait for the write lock instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory, so that a worker process started by the tests sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A database that is down must fail a request quickly (503), not hang it.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
# A PostgreSQL read replica serving the dashboard's and the API's domain reads (clm.db_router, docs/SCALING.md).
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = {
        **env.db_url("DATABASE_REPLICA_URL"),
        "CONN_MAX_AGE": env.int("CONN_MAX_AGE", default=60),
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"MIRROR": "default"},
    }
    if DATABASES["replica"]["ENGINE"].endswith("postgresql"):
        DATABASES["replica"]["OPTIONS"] = {"connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT", default=5)}
    DATABASE_ROUTERS = ["clm.db_router.ReplicaRouter"]
    MIDDLEWARE.insert(0, "clm.db_router.ReplicaReadsMiddleware")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery ---------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    # Embedded broker: kombu's filesystem transport, shared by web, worker and beat on one machine.
    BROKER_DIR = DATA_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{DATA_DIR / 'celery-results'}"
    for folder in (BROKER_DIR / "queue", BROKER_DIR / "control", DATA_DIR / "celery-results"):
        folder.mkdir(parents=True, exist_ok=True)
# Runs are recorded in the database; nothing reads task results. Storing none also spares every enqueue the result
# backend's subscription, which with Redis down would retry for ~20 s inside the request that enqueues.
CELERY_TASK_IGNORE_RESULT = True
# With the broker down, an enqueue gives up within seconds (the outbox keeps the work, docs/RELIABILITY.md).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# The worker is considered alive when its heartbeat task ran within this many seconds.
CLM_HEARTBEAT_MAX_AGE = env.int("CLM_HEARTBEAT_MAX_AGE", default=180)

# --- Auth -----------------------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The axes backend first: it refuses a locked-out username + address before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Sessions end after SESSION_COOKIE_AGE seconds from login whatever happens (absolute timeout), and after
# CLM_SESSION_IDLE_TIMEOUT seconds without a request (idle timeout); clm.middleware.SessionTimeoutMiddleware.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
CLM_SESSION_IDLE_TIMEOUT = env.int("CLM_SESSION_IDLE_TIMEOUT", default=30 * 60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# No script reads the CSRF cookie: forms carry the token, and so does the API docs' script (rendered per request).
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

# Failed logins (django-axes, counted in the database under a row lock, so concurrent attempts all count):
# after AXES_FAILURE_LIMIT failures of one username from one address, that pair is locked out for the cool-off.
# Locking the pair rather than the username keeps an attacker elsewhere from locking a user out of their desk.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The address is REMOTE_ADDR; behind reverse proxies (docs/SECURITY.md) set CLM_TRUSTED_PROXIES to their number,
# and only when CLM cannot be reached but through them: X-Forwarded-For is believed that many hops deep.
CLM_TRUSTED_PROXIES = env.int("CLM_TRUSTED_PROXIES", default=0)
AXES_CLIENT_IP_CALLABLE = "clm.middleware.client_ip"

# --- Security (safe by default when DEBUG is off) -------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]  # container health checks probe plain HTTP
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles only from CLM itself or carrying the response's nonce
# (templates put {{ request.csp_nonce }} on their <script> and <style> elements); no inline event handlers or
# style attributes anywhere. Chart.js draws on canvas and needs nothing more; data: is for the admin's and the
# API docs' inline SVG icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- I18n -----------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
WHITENOISE_USE_FINDERS = DEBUG

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "clm.base.api.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["clm.base.api.CanRead"],
    "DEFAULT_PARSER_CLASSES": ["clm.base.api.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clm.base.api_errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CLM API",
    "DESCRIPTION": "Push customers, orders, touchpoints, feedback and marketing spend in; pull lifecycle stages out. "
    "Authenticate with `Authorization: Api-Key <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One schema name for a choice set several fields share (email and SMS consent).
    "ENUM_NAME_OVERRIDES": {"ConsentStateEnum": "lifecycle.models.ConsentState"},
}
# A batch holds at most this many items; a request body at most this many bytes (larger: 413).
CLM_INGEST_MAX_ITEMS = env.int("CLM_INGEST_MAX_ITEMS", default=1000)
CLM_API_MAX_BODY_BYTES = env.int("CLM_API_MAX_BODY_BYTES", default=5 * 1024 * 1024)
# A CSV file uploaded on /imports/ is at most this large (refused by its Content-Length before it is read).
CLM_UPLOAD_MAX_BYTES = env.int("CLM_UPLOAD_MAX_BYTES", default=1024**3)
CLM_UPLOAD_KEEP_DAYS = env.int("CLM_UPLOAD_KEEP_DAYS", default=7)  # an upload not imported by then is deleted
# Webhook destinations: http and private addresses (http://127.0.0.1 in development and tests) only with this on.
CLM_OUTBOUND_ALLOW_LOCAL = env.bool("CLM_OUTBOUND_ALLOW_LOCAL", default=DEBUG)
# After a destination's secret is rotated, events carry a signature with the old one too for this long.
CLM_WEBHOOK_SECRET_OVERLAP_HOURS = env.int("CLM_WEBHOOK_SECRET_OVERLAP_HOURS", default=24)

# --- Logging --------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes logs every successful login at INFO, httpx every request (each webhook sent, each page of a shop's
    # history): their warnings are what matters; the delivery log and the source pages keep the rest.
    "loggers": {"axes": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}

# --- Lifecycle ------------------------------------------------------------------------------------
# Customers per reclassification chunk: one transaction, two statements; bounds lock time and memory.
CLM_CLASSIFY_CHUNK_SIZE = env.int("CLM_CLASSIFY_CHUNK_SIZE", default=10_000)
# Deliveries of one chunk (redeliveries after a lost worker and retries) before the chunk and its run fail.
CLM_CHUNK_MAX_ATTEMPTS = env.int("CLM_CHUNK_MAX_ATTEMPTS", default=5)
# A classification or metrics run still "running" after this many seconds is failed by the sweeper (every
# 5 minutes) and, for runs over all customers and metrics jobs, started again.
CLM_RUN_TIME_LIMIT = env.int("CLM_RUN_TIME_LIMIT", default=2 * 3600)
# A stored metric result older than this is recomputed on request (the snapshot job refreshes the defaults hourly).
CLM_METRICS_MAX_AGE = env.int("CLM_METRICS_MAX_AGE", default=2 * 3600)
