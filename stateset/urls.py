from importlib import import_module

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from stateset import health, metrics
from stateset.api.keys import ApiKeyViewSet

platform_router = SimpleRouter(trailing_slash=False)
platform_router.register("api-keys", ApiKeyViewSet, basename="api-key")


def _routes(*modules: str) -> list[URLPattern | URLResolver]:
    """The apps' routes, listed under ``api/v1/`` in place rather than ``include``d: resolving a
    path tries the patterns in order, and an ``include`` that does not hold the path answers with
    a Resolver404 whose list of tried patterns is built and copied into its parent's, once for
    every app before the one that holds the path (docs/performance.md, seventh pass). Same
    patterns, same order, same names (the apps have no namespaces)."""
    return [route for module in modules for route in import_module(module).urlpatterns]


api_v1: list[URLPattern | URLResolver] = [
    path("health", health.ApiHealthView.as_view(), name="api-health"),
    path("status", health.ApiStatusView.as_view(), name="api-status"),
    *_routes("catalog.urls", "customers.urls", "inventory.urls", "orders.urls",
             "fulfillment.urls", "returns.urls", "webhooks.urls"),
    *platform_router.urls,
    *_routes("imports.urls", "audit.urls"),
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
