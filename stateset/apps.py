from django.apps import AppConfig


class StatesetConfig(AppConfig):
    name = "stateset"
    verbose_name = "API platform"
    default_auto_field = "django.db.models.BigAutoField"
