"""Reads of the API platform's own tables: API keys (``/api/v1/api-keys``, the admin)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from stateset.models import ApiKey

# The answer shape of a key (SPEC §3): never a hash.
API_KEY_FIELDS = ("id", "name", "prefix", "scopes", "expires_at", "rate_limit", "last_used_at",
                  "created_at", "revoked_at")


def render_api_key(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "prefix": row["prefix"],
        "scopes": list(row["scopes"]),
        "expires_at": row["expires_at"],
        "rate_limit": row["rate_limit"],
        "last_used_at": row["last_used_at"],
        "created_at": row["created_at"],
        "revoked_at": row["revoked_at"],
    }


def render_api_keys(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [render_api_key(row) for row in rows]


def api_key_data(api_key: ApiKey) -> dict[str, Any]:
    return render_api_key({field: getattr(api_key, field) for field in API_KEY_FIELDS})


def api_key_list(*, filters: dict[str, Any]) -> QuerySet[ApiKey, dict[str, Any]]:
    """``.values()`` rows for ``GET /api-keys``; ``revoked``: only revoked (true) or live
    (false)."""
    rows = ApiKey.objects.all()
    if filters.get("revoked") is not None:
        rows = rows.filter(revoked_at__isnull=not filters["revoked"])
    answer: QuerySet[ApiKey, dict[str, Any]] = rows.values(*API_KEY_FIELDS)
    return answer


def api_key_detail(*, api_key_id: uuid.UUID | str) -> dict[str, Any] | None:
    row = ApiKey.objects.filter(pk=api_key_id).values(*API_KEY_FIELDS).first()
    return render_api_key(row) if row is not None else None
