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
