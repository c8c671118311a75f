"""Probes (SPEC §8). ``/health`` touches nothing; ``/health/ready`` checks each dependency."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from stateset.api.errors import error_payload
from stateset.api.rendering import dumps
from stateset.api.schema import ERROR
from stateset.api.views import ApiView

logger = logging.getLogger("stateset.health")
VERSION = "1.0.0"
STARTED = time.time()
_LIVE = b'{"status":"ok"}'


def live(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_LIVE, content_type="application/json")


def failure_name(exc: BaseException) -> str:
    """A generic name for a failed check: probes and status pages are seen by more people than the
    logs, and raw exception text carries host names, user names and addresses."""
    from stateset.cache import BreakerOpen

    if isinstance(exc, BreakerOpen):
        return "skipped: circuit open"
    names = {type(c).__name__ for c in (exc, exc.__cause__, exc.__context__) if c is not None}
    if isinstance(exc, TimeoutError) or any("Timeout" in name for name in names):
        return "timeout"
    if isinstance(exc, (ConnectionError, OSError)) or names & {"OperationalError", "InterfaceError",
                                                                 "ConnectionError",
                                                               "ConnectionInterrupted"}:
        return "unreachable"
    return "error"


def _timed(name: str, check) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        detail = check()
        result: dict[str, Any] = {"status": "ok"}
        if detail:
            result["detail"] = detail
    except Exception as exc:  # every failure is a finding here, not an error
        result = {"status": "down", "error": failure_name(exc)}
        logger.warning("readiness check failed", exc_info=exc,
                       extra={"fields": {"component": name}})
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> str | None:
    if not settings.CACHE_REDIS_URL:
        return "not configured: process-local cache"
    from django_redis import get_redis_connection

    get_redis_connection("default").ping()
    return None


def _broker() -> str | None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "not configured: tasks run eagerly"
    from stateset.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return None


def components() -> dict[str, dict[str, Any]]:
    found = {"database": _timed("database", _database), "redis": _timed("redis", _redis),
             "broker": _timed("broker", _broker)}
    # Only the database is required: without Redis the API serves from PostgreSQL, without the
    # broker events wait in the outbox (SPEC §10). Those two report "degraded", not "down".
    found["database"]["required"] = True
    found["redis"]["required"] = False
    found["broker"]["required"] = False
    found.update(_replicas())
    return found


def _replicas() -> dict[str, dict[str, Any]]:
    """Each read replica, checked now: a down or lagging one is skipped by the router (reads go to
    the primary), so it degrades the answer without failing it."""
    from stateset.db import replica_aliases, replica_health

    found: dict[str, dict[str, Any]] = {}
    for alias in replica_aliases():
        started = time.perf_counter()
        state = replica_health.check(alias)
        status = "ok" if state.usable else ("lagging" if state.lag is not None else "down")
        found[alias] = {"status": status,
                        "lag_seconds": None if state.lag is None else round(state.lag, 3),
                        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                        "required": False}
    return found


def ready(request: HttpRequest) -> HttpResponse:
    found = components()
    ok = all(c["status"] == "ok" for c in found.values() if c["required"])
    degraded = any(c["status"] != "ok" for c in found.values())
    body = {"status": "ok" if not degraded else ("degraded" if ok else "down"), "components": found}
    return HttpResponse(dumps(body), status=200 if ok else 503, content_type="application/json")


COMPONENT_STATUSES = ["ok", "down", "lagging"]
HEALTH_STATUSES = ["ok"]


class ComponentOut(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=COMPONENT_STATUSES)
    # Named like Field.required: the metaclass moves declared fields off the class (no shadowing).
    required = serializers.BooleanField(  # type: ignore[assignment]  # see above
        help_text="Whether the API is down without it.")
    latency_ms = serializers.FloatField()
    detail = serializers.CharField(required=False, help_text="Why a check was not run.")
    error = serializers.CharField(required=False, help_text="A generic name for the failure.")
    lag_seconds = serializers.FloatField(required=False, allow_null=True,
                                         help_text="A replica's replay lag.")


class HealthOut(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=HEALTH_STATUSES)
    version = serializers.CharField()


class StatusOut(HealthOut):
    uptime_seconds = serializers.IntegerField()
    components = serializers.DictField(child=ComponentOut())


class ApiHealthView(ApiView):
    """``/api/v1/health``: liveness inside the API envelope (compatibility)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(responses=HealthOut)
    def get(self, request: Request) -> Response:
        return Response({"status": "ok", "version": VERSION})


class ApiStatusView(ApiView):
    """``/api/v1/status``: version, uptime and each dependency (compatibility)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(responses={200: StatusOut, 503: ERROR})
    def get(self, request: Request) -> Response:
        found = components()
        if not all(c["status"] == "ok" for c in found.values() if c["required"]):
            return Response(error_payload("service_unavailable", "A required dependency is down.",
                                          {"components": found}), status=503)
        return Response({"status": "ok", "version": VERSION,
                         "uptime_seconds": int(time.time() - STARTED), "components": found})
