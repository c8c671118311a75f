from typing import Any

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class StatesetConfig(AppConfig):
    default = True
    name = "stateset"
    verbose_name = "API platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        connection_created.connect(_size_statement_cache, dispatch_uid="stateset-statement-cache")
        _cache_long_statements()

        from stateset import telemetry

        telemetry.setup()  # [telemetry] enabled: before the first request or task of this process


class StateSetAdminConfig(admin_apps.AdminConfig):
    """The Django admin with the back-office index (today's orders and revenue, low stock)."""

    default = False  # StatesetConfig is this module's default app config
    default_site = "stateset.backoffice.StateSetAdminSite"


def _size_statement_cache(sender: Any, connection: Any, **kwargs: Any) -> None:
    """psycopg keeps at most ``prepared_max`` prepared statements per connection."""
    from django.conf import settings

    if connection.vendor == "postgresql" and settings.STATEMENT_CACHE_SIZE:
        connection.connection.prepared_max = settings.STATEMENT_CACHE_SIZE


# psycopg converts a statement's ``%s`` placeholders with a regex pass, cached per statement text
# only up to 50 parameters and 4 KiB: an order's batched INSERT (``stateset.db.batched_inserts``:
# its movements, reservation, order lines, events and outbox rows, ~80 parameters) was converted
# again on every order, ~8% of ``POST /orders``' CPU under the CPU-clock profiler
# (``loadtest.profile orders_create --cpu``). The cache stays an LRU of 128 statements, so the
# larger limits bound its memory (128 × 32 KiB); bulk statements past them are still not cached.
CACHED_STATEMENT_LIMITS = {"MAX_CACHED_STATEMENT_PARAMS": 1000,
                           "MAX_CACHED_STATEMENT_LENGTH": 32 * 1024}


def _cache_long_statements() -> None:
    from psycopg import _queries

    for name, value in CACHED_STATEMENT_LIMITS.items():
        # Module constants read on every statement (psycopg 3.3); a release that renamed them
        # fails stateset/tests/test_db_statement_cache.py rather than silently caching less.
        if hasattr(_queries, name):
            setattr(_queries, name, max(value, getattr(_queries, name)))
