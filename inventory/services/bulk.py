"""``POST /inventory/bulk-adjust``: up to 1,000 adjustments, each answered on its own, all valid
ones applied in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from inventory import locks
from inventory.models import InventoryItem, Location
from inventory.services.common import (
    MAX_LINES,
    MAX_REASON,
    Kind,
    ProductRef,
    as_uuid,
    check_quantity,
    product_refs,
)
from inventory.services.ledger import Change, apply_changes, ensure_items, item_ids_for
from stateset.errors import (
    ValidationFailed,
)
from stateset.inputs import clean_text


@dataclass
class BulkAdjustResult:
    results: list[dict[str, Any]]
    applied: int
    dry_run: bool

    @property
    def valid(self) -> int:
        return sum(1 for r in self.results if r["ok"])

    def as_dict(self) -> dict[str, Any]:
        return {"results": self.results, "applied": self.applied, "valid": self.valid,
                "dry_run": self.dry_run}


@dataclass
class _BulkRow:
    index: int
    product_id: uuid.UUID | None
    sku: str | None
    location_id: uuid.UUID
    delta: int
    reason: str
    product: ProductRef | None = None
    error: dict[str, Any] | None = field(default=None)

_BULK_FIELDS = {"product_id", "sku", "location_id", "delta", "reason"}


def _bulk_row(index: int, raw: Any) -> _BulkRow | dict[str, Any]:
    """Validate one row's shape; an error dict when it is malformed."""
    if not isinstance(raw, Mapping):
        return _row_error("validation_error", "Each adjustment must be an object.")
    unknown = sorted(set(raw) - _BULK_FIELDS)
    if unknown:
        return _row_error("validation_error", "Unknown field.",
                          {k: ["Unknown field."] for k in unknown})
    try:
        product_id = (as_uuid(raw["product_id"], "product_id") if raw.get("product_id") is not None
                      else None)
        sku = clean_text(raw.get("sku"), "sku", 64) or None
        if product_id is None and sku is None:
            raise ValidationFailed("Give product_id or sku.",
                                   details={"product_id": ["Give product_id or sku."]})
        if raw.get("location_id") is None:
            raise ValidationFailed("location_id is required.",
                                   details={"location_id": ["This field is required."]})
        location_id = as_uuid(raw["location_id"], "location_id")
        if raw.get("delta") is None:
            raise ValidationFailed("delta is required.",
                                   details={"delta": ["This field is required."]})
        delta = check_quantity(raw["delta"], "delta", signed=True)
        reason = clean_text(raw.get("reason"), "reason", MAX_REASON, required=True)
    except ValidationFailed as exc:
        return _row_error(exc.code, exc.message, exc.details)
    return _BulkRow(index, product_id, sku, location_id, delta, reason)


def _row_error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return error


def stock_bulk_adjust(*, adjustments: Sequence[Any], dry_run: bool = False,
                      actor: str = "") -> BulkAdjustResult:
    """Apply up to 1,000 adjustments ``{"product_id" | "sku", "location_id", "delta", "reason"}``.

    Each row is checked on its own (shape, product, location, on_hand falling below reserved —
    after the request's earlier rows for the same product and location, which apply in order) and
    answered ``{"index", "ok", "error"?}``; every valid row is applied in one durable transaction
    with one ``adjust`` movement per row (several rows of one inventory row: one movement each, in
    request order). Rows are locked in primary-key order. ``dry_run`` checks against current
    numbers and writes nothing. Raises ValidationFailed only when the list itself is empty or too
    long."""
    if not isinstance(adjustments, Sequence) or isinstance(adjustments, (str, bytes)) \
            or not 1 <= len(adjustments) <= MAX_LINES:
        raise ValidationFailed(f"Give 1 to {MAX_LINES} adjustments.",
                               details={"adjustments": [f"Give 1 to {MAX_LINES} adjustments."]})
    errors: dict[int, dict[str, Any]] = {}
    rows: list[_BulkRow] = []
    for index, raw in enumerate(adjustments):
        parsed = _bulk_row(index, raw)
        if isinstance(parsed, dict):
            errors[index] = parsed
        else:
            rows.append(parsed)

    refs: list[ProductRef | None] = []
    if rows:
        try:
            refs = product_refs([(r.product_id, r.sku) for r in rows])
        # a sku/product_id mismatch: resolve row by row to blame the right one
        except ValidationFailed:
            refs = []
            for r in rows:
                try:
                    refs.append(product_refs([(r.product_id, r.sku)])[0])
                except ValidationFailed as exc:
                    errors[r.index] = _row_error(exc.code, exc.message, exc.details)
                    refs.append(None)
    known_locations = set(
        Location.objects.filter(id__in={r.location_id for r in rows}).values_list("id", flat=True))
    candidates: list[_BulkRow] = []
    for row, ref in zip(rows, refs, strict=True):
        if row.index in errors:
            continue
        if ref is None:
            errors[row.index] = _row_error("product_not_found", "No such product.")
        elif row.location_id not in known_locations:
            errors[row.index] = _row_error("location_not_found", "No such location.")
        else:
            row.product = ref
            candidates.append(row)

    applied = 0
    # Every candidate's product is set above; the ignores below are for its ``ProductRef | None``.
    with transaction.atomic(durable=not dry_run):
        pairs = [(r.product.id, r.location_id)  # type: ignore[union-attr]  # set
                 for r in candidates]
        items = item_ids_for(pairs)
        missing = [(r.product, r.location_id) for r in candidates
                   if r.delta > 0 and (r.product.id,  # type: ignore[union-attr]  # set
                                       r.location_id) not in items]
        if missing and not dry_run:  # a positive adjustment creates its row
            ensure_items(missing)  # type: ignore[arg-type]  # products set, see above
            items = item_ids_for(pairs)
        counters = locks.lock_items(items.values()) if not dry_run else dict(
            (i, (h, r)) for i, h, r in InventoryItem.objects.filter(id__in=items.values())
            .values_list("id", "on_hand", "reserved"))
        # Several rows of one inventory row apply in request order (apply_changes keeps it).
        changes: list[Change] = []
        running = {item_id: list(numbers) for item_id, numbers in counters.items()}
        for row in candidates:
            item_id = items.get((row.product.id,  # type: ignore[union-attr]  # set
                                 row.location_id))
            on_hand, reserved = running.get(item_id, [0, 0]) if item_id else (0, 0)
            if on_hand + row.delta < reserved:
                errors[row.index] = _row_error(
                    "insufficient_stock", "on_hand would fall below what is reserved.",
                    {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved,
                     "delta": row.delta})
                continue
            if item_id is not None:
                running.setdefault(item_id, [0, 0])[0] = on_hand + row.delta
                changes.append(Change(item_id, row.delta, 0, Kind.ADJUST, row.reason))
            else:  # a positive delta in a dry run on a row that does not exist yet
                assert dry_run
        if not dry_run and changes:
            apply_changes(changes, actor=actor)
            applied = len(changes)
    results = [
        {"index": i, "ok": False, "error": errors[i]} if i in errors else {"index": i, "ok": True}
        for i in range(len(adjustments))
    ]
    return BulkAdjustResult(results=results, applied=applied, dry_run=dry_run)
