from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from stateset import health, metrics
from stateset.api.keys import ApiKeyViewSet

platform_router = SimpleRouter(trailing_slash=False)
platform_router.register("api-keys", ApiKeyViewSet, basename="api-key")

api_v1: list[URLPattern | URLResolver] = [
    path("health", health.ApiHealthView.as_view(), name="api-health"),
    path("status", health.ApiStatusView.as_view(), name="api-status"),
    path("", include("catalog.urls")),
    path("", include("customers.urls")),
    path("", include("inventory.urls")),
    path("", include("orders.urls")),
    path("", include("fulfillment.urls")),
    path("", include("returns.urls")),
    path("", include("webhooks.urls")),
    path("", include(platform_router.urls)),
    path("", include("imports.urls")),
    path("", include("audit.urls")),
]

urlpatterns = [
    path("health", health.live, name="health"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("metrics/json", metrics.metrics_json_view, name="metrics-json"),
    path("api/v1/", include(api_v1)),
    path("api/schema/",
         SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
         name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[],
                                                     permission_classes=[]), name="docs"),
    path("admin/", admin.site.urls),
]

handler400 = "stateset.api.errors.handler400"
handler403 = "stateset.api.errors.handler403"
handler404 = "stateset.api.errors.handler404"
handler500 = "stateset.api.errors.handler500"
