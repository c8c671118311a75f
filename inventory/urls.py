from rest_framework.routers import SimpleRouter

from inventory.api import InventoryViewSet, LocationViewSet

router = SimpleRouter(trailing_slash=False)
router.register("inventory", InventoryViewSet, basename="inventory")
router.register("locations", LocationViewSet, basename="location")

urlpatterns = router.urls
