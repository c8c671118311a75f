"""Every read of the webhooks app."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from webhooks.models import Delivery, Endpoint

ENDPOINT_FIELDS = ("id", "url", "events", "description", "is_active", "consecutive_failures",
                   "disabled_at", "disabled_reason", "previous_secret_expires_at", "version",
                   "created_at", "updated_at")
DELIVERY_FIELDS = ("id", "event_id", "event__type", "status", "attempts", "next_attempt_at",
                   "last_attempt_at", "response_status", "last_error", "created_at", "delivered_at")


def render_endpoint(endpoint: Endpoint) -> dict[str, Any]:
    return {name: getattr(endpoint, name) for name in ENDPOINT_FIELDS}


def endpoint_list() -> QuerySet[Endpoint]:
    return Endpoint.objects.only(*ENDPOINT_FIELDS)


def render_endpoints(rows: Iterable[Endpoint]) -> list[dict[str, Any]]:
    return [render_endpoint(row) for row in rows]


def endpoint_get(endpoint_id: uuid.UUID) -> Endpoint | None:
    return Endpoint.objects.filter(id=endpoint_id).only(*ENDPOINT_FIELDS).first()


def delivery_list(*, endpoint_id: uuid.UUID, status: str | None = None) -> QuerySet[Delivery,
                                                                                    dict[str, Any]]:
    rows = Delivery.objects.filter(endpoint_id=endpoint_id)
    if status:
        rows = rows.filter(status=status)
    values: QuerySet[Delivery, dict[str, Any]] = rows.values(*DELIVERY_FIELDS)
    return values


def render_deliveries(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**{k: v for k, v in row.items() if k != "event__type"},
             "event_type": row["event__type"]}
            for row in rows]


def failed_deliveries_count() -> int:
    """For the admin index: deliveries that gave up (bounded count, index on status)."""
    return Delivery.objects.filter(status=Delivery.Status.FAILED)[:1000].count()


def endpoints_needing_attention(*, hours: int = 24, limit: int = 20) -> list[dict[str, Any]]:
    """Disabled endpoints and those with deliveries that gave up in the last ``hours``, with how
    many: two queries (the failures over the ``(status, created_at)`` index, then the few
    endpoints)."""
    since = timezone.now() - timedelta(hours=hours)
    failures: dict[uuid.UUID, dict[str, Any]] = {}
    for row in (Delivery.objects.filter(status=Delivery.Status.FAILED, created_at__gte=since)
                .values("endpoint_id").annotate(failed=Count("id"), last=Max("created_at"))
                .order_by()):
        failures[row["endpoint_id"]] = {"failed": row["failed"], "last": row["last"]}
    endpoints = (Endpoint.objects.filter(is_active=False) | Endpoint.objects.filter(
        id__in=list(failures)[:limit])).order_by("-created_at", "-id").values(
        "id", "url", "is_active")[:limit]
    return [{**row, "failed": failures.get(row["id"], {}).get("failed", 0),
             "last_failure": failures.get(row["id"], {}).get("last")} for row in endpoints]


def disabled_endpoints_count() -> int:
    """For the admin index: endpoints disabled for failing (SPEC §4.7)."""
    return Endpoint.objects.filter(is_active=False, disabled_at__isnull=False).count()
