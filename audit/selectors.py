"""Reads of the audit trail: an object's events, newest first, for the API and the admin."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import F, QuerySet

from audit.registry import Audited

EVENT_FIELDS = ("pgh_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "pgh_context",
                "pgh_context_id", "pgh_diff")


def events_of(entry: Audited, object_id: uuid.UUID | str) -> QuerySet[Any]:
    """One object's events (index on ``pgh_obj_id``). ``id`` is the event's own id, for the
    project's keyset pagination, which breaks ties by ``id``."""
    snapshot = _snapshot_columns(entry)
    rows: QuerySet[Any] = (entry.event_model.objects.filter(pgh_obj_id=object_id)
                           .annotate(id=F("pgh_id")).values(*EVENT_FIELDS, "id", *snapshot))
    return rows


def _snapshot_columns(entry: Audited) -> list[str]:
    return [f.attname for f in entry.event_model._meta.concrete_fields
            if not f.name.startswith("pgh_")]


def render_event(entry: Audited, row: dict[str, Any]) -> dict[str, Any]:
    context = row["pgh_context"] or {}
    diff = row["pgh_diff"]
    changes = ({column: {"old": old, "new": new} for column, (old, new) in diff.items()}
               if diff else {})
    return {
        "id": row["pgh_id"],
        "object_type": entry.label,
        "object_id": str(row["pgh_obj_id"]),
        "action": row["pgh_label"],
        "at": row["pgh_created_at"],
        "actor": context.get("actor") or "system",
        "context": {key: value for key, value in context.items() if key != "actor"},
        "changes": changes,
        "snapshot": {name: row[name] for name in _snapshot_columns(entry)},
    }


def render_events(entry: Audited, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [render_event(entry, row) for row in rows]
