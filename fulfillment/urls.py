from rest_framework.routers import SimpleRouter

from fulfillment.api import OrderStatusViewSet, ShipmentViewSet

router = SimpleRouter(trailing_slash=False)
router.register("shipments", ShipmentViewSet, basename="shipment")
router.register("orders", OrderStatusViewSet, basename="order-status")

urlpatterns = router.urls
