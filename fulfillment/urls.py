from rest_framework.routers import SimpleRouter

from fulfillment.api import ShipmentViewSet

router = SimpleRouter(trailing_slash=False)
router.register("shipments", ShipmentViewSet, basename="shipment")

urlpatterns = router.urls
