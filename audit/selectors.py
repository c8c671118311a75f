"""Reads of the audit trail: an object's events, newest first, for the API and the admin."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import models
from django.db.models import F, QuerySet

from audit.registry import Audited
from stateset.money import money_str

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


def _money_columns(entry: Audited) -> list[str]:
    """The audited amounts: stored with the widest currency's digits (three), shown with their own
    currency's, as every answer shows money."""
    return [f.attname for f in entry.event_model._meta.concrete_fields
            if isinstance(f, models.DecimalField)]


def _currencies(entry: Audited, rows: list[dict[str, Any]]) -> list[str | None]:
    """Each row's currency: its own column, else its order's (an order item's amounts), read in one
    query for the page."""
    if not rows or not _money_columns(entry):
        return [None] * len(rows)
    if "currency" in rows[0]:
        return [row["currency"] for row in rows]
    if "order_id" not in rows[0]:
        return [None] * len(rows)
    orders = entry.model._meta.get_field("order").related_model
    assert isinstance(orders, type), entry.label  # a foreign key to a model, not "self"
    found = dict(orders._default_manager.filter(id__in={row["order_id"] for row in rows})
                 .values_list("id", "currency"))
    return [found.get(row["order_id"]) for row in rows]


def _amount(value: Any, currency: str | None) -> Any:
    if currency is None or value is None or isinstance(value, bool):
        return value
    try:
        return money_str(Decimal(str(value)), currency)
    except (InvalidOperation, ValueError):
        return value


def render_event(entry: Audited, row: dict[str, Any],
                 currency: str | None = None) -> dict[str, Any]:
    context = row["pgh_context"] or {}
    diff = row["pgh_diff"] or {}
    money = set(_money_columns(entry)) if currency else set()
    # An amount before a change of currency is shown in the currency it was in.
    was = diff["currency"][0] if "currency" in diff else currency
    changes = {column: {"old": _amount(old, was) if column in money else old,
                        "new": _amount(new, currency) if column in money else new}
               for column, (old, new) in diff.items()}
    return {
        "id": row["pgh_id"],
        "object_type": entry.label,
        "object_id": str(row["pgh_obj_id"]),
        "action": row["pgh_label"],
        "at": row["pgh_created_at"],
        "actor": context.get("actor") or "system",
        "context": {key: value for key, value in context.items() if key != "actor"},
        "changes": changes,
        "snapshot": {name: _amount(row[name], currency) if name in money else row[name]
                     for name in _snapshot_columns(entry)},
    }


def render_events(entry: Audited, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    page = list(rows)
    return [render_event(entry, row, currency)
            for row, currency in zip(page, _currencies(entry, page), strict=True)]
