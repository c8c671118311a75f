"""The API's URLconf plus the framework floor, for ``make bench``
(``STATESET_URLCONF=loadtest.urls``).

``/_bench/floor`` is the cheapest Django JSON view there is, served through the same middleware,
workers and settings as the API: every endpoint's throughput is reported as a ratio to it.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from stateset import urls as app_urls


def floor(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("_bench/floor", floor, name="bench-floor"), *app_urls.urlpatterns]

handler400 = app_urls.handler400
handler403 = app_urls.handler403
handler404 = app_urls.handler404
handler500 = app_urls.handler500
