from rest_framework.routers import SimpleRouter

from imports.api import ImportViewSet

router = SimpleRouter(trailing_slash=False)
router.register("imports", ImportViewSet, basename="import")

urlpatterns = router.urls
