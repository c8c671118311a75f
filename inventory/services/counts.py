"""Imports of stock (SPEC §4.8): set counts (``on_hand``: the difference is an ``adjust``
movement with reason ``import``) or receive quantities (``quantity``: a ``receive`` movement),
many rows at once, each answered on its own, all through the one ledger primitive.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from inventory import locks
from inventory.models import MAX_QUANTITY, InventoryItem
from inventory.selectors import locations_by_codes
from inventory.services.common import MAX_REFERENCE_ID, Kind, ProductRef, product_refs
from inventory.services.ledger import Change, apply_changes, ensure_items, item_ids_for
from stateset.bulk import (
    CellInvalid,
    Mode,
    Outcome,
    RowError,
    RowResult,
    cell_text,
    duplicate_error,
    exists_error,
    first_of_each,
)

IMPORT_REASON = "import"
COUNT_COLUMNS = ("on_hand", "quantity")


def _count(value: Any, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CellInvalid("invalid", "A valid integer is required.")
    if not low <= value <= MAX_QUANTITY:
        raise CellInvalid("out_of_range", f"Must be an integer between {low} and {MAX_QUANTITY}.")
    return value


def stock_import(*, rows: Sequence[Mapping[str, Any]], mode: str = Mode.UPSERT,
                 dry_run: bool = False, actor: str = "", reference_id: str = "") -> list[RowResult]:
    """Stock counts of many (SKU, location code) pairs; one :class:`RowResult` per row.

    Each row holds ``sku``, ``location_code`` and either ``on_hand`` (the count to set, 0 to
    1,000,000: the difference is one ``adjust`` movement, reason ``import``; a count equal to the
    current one is ``unchanged``; a count below what is reserved fails with
    ``insufficient_stock``) or ``quantity`` (units received, 1 to 1,000,000: a ``receive``
    movement). A missing row is created (``created``). Movements carry ``reference_type="import"``
    and ``reference_id``. ``mode="create"``: an existing row is ``already_exists``; a pair repeated
    in ``rows`` fails its later rows (``duplicate_in_file``); unknown SKUs and location codes fail
    their row. Joins the caller's transaction: missing rows are inserted first (no lock), then the
    batch's rows are locked in primary-key order and changed by one conditional UPDATE with one
    movement each (:func:`ledger.apply_changes`: cache invalidation after commit,
    ``inventory.low_stock`` through the outbox). ``dry_run`` answers against the current numbers
    and writes nothing."""
    results = [RowResult() for _ in rows]
    parsed: list[tuple[int, str, str, str, int]] = []
    for index, raw in enumerate(rows):
        errors: list[RowError] = []
        values: dict[str, Any] = {}
        for column, max_length in (("sku", 64), ("location_code", 32)):
            try:
                values[column] = cell_text(raw.get(column), max_length)
            except CellInvalid as exc:
                errors.append(RowError(column, exc.code, exc.message))
        given = [column for column in COUNT_COLUMNS if raw.get(column) is not None]
        unknown = sorted(set(raw) - {"sku", "location_code", *COUNT_COLUMNS})
        errors += [RowError(column, "unknown_field", "Not a stock field.") for column in unknown]
        if len(given) != 1:
            errors.append(RowError(None, "invalid_row", "Give on_hand or quantity (one of them)."))
        else:
            column = given[0]
            try:
                values[column] = _count(raw[column], low=0 if column == "on_hand" else 1)
            except CellInvalid as exc:
                errors.append(RowError(column, exc.code, exc.message))
        if errors:
            results[index].fail(*errors)
            continue
        column = given[0]
        parsed.append((index, values["sku"], values["location_code"], column, values[column]))

    products = dict(zip([p[1].upper() for p in parsed],
                        product_refs([(None, p[1]) for p in parsed]),
                        strict=True)) if parsed else {}
    locations = locations_by_codes(p[2] for p in parsed)
    lines: list[tuple[int, ProductRef, uuid.UUID, str, int]] = []
    keys: list[str | None] = []
    for index, sku, code, column, value in parsed:
        product, location = products.get(sku.upper()), locations.get(code.upper())
        if product is None:
            results[index].fail(RowError("sku", "product_not_found", "No product has this SKU."))
        if location is None:
            results[index].fail(RowError("location_code", "location_not_found",
                                         "No location has this code."))
        if product is not None and location is not None:
            lines.append((index, product, location, column, value))
            keys.append(f"{product.id}:{location}")
    firsts = first_of_each(keys)
    for line, first in zip(list(lines), firsts, strict=True):
        if not first:
            results[line[0]].fail(duplicate_error(None))
            lines.remove(line)
    if not lines:
        return results

    with transaction.atomic():
        pairs = [(product.id, location) for _, product, location, _, _ in lines]
        ids = item_ids_for(pairs)
        missing = [(product, location) for _, product, location, _,
                   _ in lines if (product.id, location) not in ids]
        if missing and not dry_run:
            ensure_items(missing)
            ids = item_ids_for(pairs)
        new = {(product.id, location) for product, location in missing}
        if dry_run:
            counters = {i: (h, r) for i, h, r in InventoryItem.objects.filter(id__in=ids.values())
                        .values_list("id", "on_hand", "reserved")}
        else:
            counters = locks.lock_items(ids.values())
        changes: list[Change] = []
        for index, product, location, column, value in lines:
            key = (product.id, location)
            if key not in new and mode == Mode.CREATE:
                results[index].fail(exists_error(None))
                continue
            item_id = ids.get(key)
            on_hand, reserved = counters.get(item_id, (0, 0)) if item_id else (0, 0)
            if column == "on_hand":
                delta = value - on_hand
                if value < reserved:
                    results[index].fail(RowError("on_hand", "insufficient_stock",
                                                 f"{reserved} units are reserved; on_hand may not "
                                                 "go below."))
                    continue
                kind = Kind.ADJUST
            else:
                delta, kind = value, Kind.RECEIVE
            results[index].outcome = (Outcome.CREATED if key in new else
                                      Outcome.UPDATED if delta else Outcome.UNCHANGED)
            if delta and item_id is not None:
                changes.append(Change(item_id, delta, 0, kind, IMPORT_REASON, "import",
                                      reference_id[:MAX_REFERENCE_ID]))
        if changes and not dry_run:
            apply_changes(changes, actor=actor)
    return results
