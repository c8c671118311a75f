from django.apps import AppConfig


class FulfillmentConfig(AppConfig):
    name = "fulfillment"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fulfillment import selectors
        from orders.selectors import register_detail_section

        register_detail_section("shipments", selectors.shipments_of_order)
