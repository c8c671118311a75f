from django.apps import AppConfig


class ReturnsConfig(AppConfig):
    name = "returns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orders.selectors import register_detail_section
        from returns import selectors

        register_detail_section("returns", selectors.returns_for_order)
