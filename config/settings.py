"""One settings module; production differs only through environment variables (see .env.example)."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from objects.timeouts import postgres_options

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The secret key: SECRET_KEY, else the content of the file SECRET_KEY_FILE names (default var/secret_key, which
# `make run` writes once). With DEBUG off there is no fallback: a key everyone can read signs no session.
SECRET_KEY = env.ENVIRON.get("SECRET_KEY", "")  # as given: django-environ reads a leading "$" as a reference
_key_file = Path(env.str("SECRET_KEY_FILE", default=str(VAR_DIR / "secret_key")))
if not SECRET_KEY and _key_file.is_file():
    SECRET_KEY = _key_file.read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off: set SECRET_KEY (50 or more random characters) in the "
            f"environment or .env, or SECRET_KEY_FILE to a file that holds one ({_key_file} does not exist; "
            "`make run` writes it), or DEBUG=1 for development."
        )
    # Development only (DEBUG on); `manage.py check --deploy` flags it as insecure.
    SECRET_KEY = "django-insecure-dev-only-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "objects",
    "catalog",
    "cart",
    "wallet",
    "inventory",
    "orders",
    "counters",
    "shop",
]
if env.bool("OBJECTS_BENCH", default=False):
    INSTALLED_APPS.append("bench")
if env.bool("OBJECTS_TEST_OBJECTS", default=False):
    INSTALLED_APPS.append("tests.testobjects.apps.TestObjectsConfig")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Ingress requests without a session cookie (token clients) go straight to the ingress view from here;
    # the rest of the list runs for every other request (objects/middleware.py)
    "objects.middleware.IngressShortcutMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "shop.middleware.SessionMiddleware",  # keeps a newer session cookie (shop/middleware.py)
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "objects.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context.shop",  # the header's cart count on every page, and its live updates
            ],
        },
    },
]

# Database: SQLite under var/ by default (WAL, immediate transactions so concurrent writers
# queue on the lock instead of failing); PostgreSQL in production through DATABASE_URL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    _db.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=600))
    # Server-side binding and prepared statements: a statement run DATABASE_PREPARE_THRESHOLD times on a
    # connection is prepared, so PostgreSQL stops planning it on every call (planning was two thirds of its
    # CPU on the hot path, docs/dev/benchmark-history.md). Set it to an empty value behind a pooler that cannot keep
    # prepared statements (PgBouncer in transaction mode before 1.21).
    _threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
    if _threshold:
        _db.setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": int(_threshold)})
    _db.setdefault("CONN_HEALTH_CHECKS", True)
    # A vanished host or a cut network holds a key at most OBJECTS_HOST_LOSS_BOUND seconds: TCP keepalives and
    # a user timeout on both ends of every connection, the event loop's too (objects/timeouts.py; workers add
    # their session timeouts when they start).
    _db["OPTIONS"] = postgres_options(env.float("OBJECTS_HOST_LOSS_BOUND", default=30.0), _db.get("OPTIONS"))
    # The same backend, with a health check that asks the socket before it runs `SELECT 1`
    # (objects/backends/postgresql/base.py): no extra statement per request while the connection is quiet.
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db["ENGINE"] = "objects.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The framework's own settings, read lazily through objects.conf.
OBJECTS_PARTITIONS = env.int("OBJECTS_PARTITIONS", default=8)
OBJECTS_INGRESS_PREFIX = env.str("OBJECTS_INGRESS_PREFIX", default="ingress")
OBJECTS_SWEEP_INTERVAL = env.float("OBJECTS_SWEEP_INTERVAL", default=5.0)
OBJECTS_DRAIN_LINGER_MS = env.int("OBJECTS_DRAIN_LINGER_MS", default=50)
# seconds objects.call and the ingress wait for a call before answering 504 / CallTimeout (it goes on)
OBJECTS_CALL_TIMEOUT = env.float("OBJECTS_CALL_TIMEOUT", default=30.0)
# threads per web process for every request the event loop does not answer itself (objects/asgi.py)
OBJECTS_WEB_THREADS = env.int("OBJECTS_WEB_THREADS", default=16)
# client addresses that may read /metrics without signing in (the connection's address: objects/metrics.py)
OBJECTS_METRICS_ALLOW = env.list("OBJECTS_METRICS_ALLOW", default=[])
# rate limits shared by every web process (objects/ratelimit.py): "<count>/<s|min|h|day>", 0 for none
OBJECTS_RATE_LIMIT_USER = env.str("OBJECTS_RATE_LIMIT_USER", default="2000/s")
OBJECTS_RATE_LIMIT_ADDRESS = env.str("OBJECTS_RATE_LIMIT_ADDRESS", default="4000/s")
OBJECTS_RATE_LIMIT_LOGIN = env.str("OBJECTS_RATE_LIMIT_LOGIN", default="10/min")
# the event loop's own connections per web process: PostgreSQL (a request waits up to the timeout for one, then
# 503) and Redis (objects/asgi.py)
OBJECTS_WEB_DB_POOL_SIZE = env.int("OBJECTS_WEB_DB_POOL_SIZE", default=10)
OBJECTS_WEB_DB_POOL_TIMEOUT = env.float("OBJECTS_WEB_DB_POOL_TIMEOUT", default=5.0)
OBJECTS_WEB_REDIS_POOL_SIZE = env.int("OBJECTS_WEB_REDIS_POOL_SIZE", default=500)
# seconds a vanished host or a cut network may hold a key (objects/timeouts.py)
OBJECTS_HOST_LOSS_BOUND = env.float("OBJECTS_HOST_LOSS_BOUND", default=30.0)
# live state watchers (GET /ingress/{Type}/{key}/watch, objects/watch.py): at most this many per web process (then
# 503), and a comment line every this many seconds on each stream
OBJECTS_WATCH_MAX = env.int("OBJECTS_WATCH_MAX", default=1000)
OBJECTS_WATCH_HEARTBEAT = env.float("OBJECTS_WATCH_HEARTBEAT", default=15.0)

# The shop's demo top-up (shop/views.py): off unless SHOP_DEMO_TOPUP=1 (`make run` turns it on); at most
# SHOP_DEMO_TOPUP_DAILY_CENTS per user and day (UTC).
SHOP_DEMO_TOPUP = env.bool("SHOP_DEMO_TOPUP", default=False)
SHOP_DEMO_TOPUP_DAILY_CENTS = env.int("SHOP_DEMO_TOPUP_DAILY_CENTS", default=10_000)
# How long a shop page waits for a cart call before it says "still working" (shop/pending.py).
SHOP_CALL_TIMEOUT = env.float("SHOP_CALL_TIMEOUT", default=5.0)
# Checkout waits for the demo payment provider to confirm the payment (orders/payments.py); off by default.
SHOP_PAYMENT_CONFIRMATION = env.bool("SHOP_PAYMENT_CONFIRMATION", default=False)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "objects.api.authentication.CachedTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "objects.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Django Virtual Objects API",
    "DESCRIPTION": "Restate-compatible ingress and management API for virtual objects.",
    "VERSION": "0.1.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
}

# Security: production values come from the environment (`check --deploy` is clean with them).
# Messages live in the session: the default (cookie, then session) builds a cookie signer on every request,
# ingress calls included (2 % of the web process's CPU per call in the benchmark profile).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG and env.bool("HTTPS", default=False))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Behind a proxy (BEHIND_PROXY=1), uvicorn takes the scheme and the client's address from X-Forwarded-Proto and
# X-Forwarded-For, from the proxy's address only (FORWARDED_ALLOW_IPS; scripts/stack.py `web_command`). Django
# does not read them itself: SECURE_PROXY_SSL_HEADER would believe X-Forwarded-Proto from any peer, and
# X-Forwarded-Host is not read (USE_X_FORWARDED_HOST stays off).
SECURE_PROXY_SSL_HEADER = None
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
    "loggers": {"objects": {"level": env.str("OBJECTS_LOG_LEVEL", default="INFO")}},
}

# -- Fault and abuse suite (issue 10): with HSTS on, subdomains and preload default to on, so that
# `check --deploy` is clean (security.W005, W021); opt out with SECURE_HSTS_INCLUDE_SUBDOMAINS=0
# and SECURE_HSTS_PRELOAD=0.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS > 0)
