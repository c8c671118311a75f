from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class StatesetConfig(AppConfig):
    default = True
    name = "stateset"
    verbose_name = "API platform"
    default_auto_field = "django.db.models.BigAutoField"


class StateSetAdminConfig(admin_apps.AdminConfig):
    """The Django admin with the back-office index (today's orders and revenue, low stock)."""

    default = False  # StatesetConfig is this module's default app config
    default_site = "stateset.admin_site.StateSetAdminSite"
