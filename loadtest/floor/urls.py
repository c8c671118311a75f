"""One view returning ``JsonResponse({"status": "ok"})`` (SPEC §9's floor)."""

from django.http import HttpRequest, JsonResponse
from django.urls import path


def floor(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("_bench/floor", floor)]
