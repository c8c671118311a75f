from django.apps import AppConfig


class FulfillmentConfig(AppConfig):
    name = "fulfillment"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fulfillment import services
        from orders.services import order_cancelling

        order_cancelling.connect(services.on_order_cancelling, dispatch_uid="fulfillment-order-cancelling")
