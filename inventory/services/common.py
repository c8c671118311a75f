"""Shared by every inventory service: limits, argument checks, and how a line names its product
and location (resolved through the catalog's selectors).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from catalog import selectors as catalog_selectors
from inventory.models import MAX_QUANTITY, Location, Reservation, StockMovement
from inventory.selectors import locations_checked
from stateset.errors import (
    NotFound,
    ValidationFailed,
)
from stateset.inputs import clean_text

logger = logging.getLogger("inventory")

MAX_LINES = 1_000
"""Most lines one reservation, release, fulfilment or bulk adjustment may carry."""

MAX_REASON = 255

MAX_REFERENCE_TYPE = 32

MAX_REFERENCE_ID = 100

MAX_ACTOR = 100

LOCATION_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")

Kind = StockMovement.Kind

Status = Reservation.Status


def check_quantity(value: Any, name: str = "quantity", *, allow_zero: bool = False,
                   signed: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{name} must be an integer.",
                               details={name: ["A valid integer is required."]})
    low = -MAX_QUANTITY if signed else (0 if allow_zero else 1)
    if not low <= value <= MAX_QUANTITY or (signed and value == 0):
        rule = f"a non-zero integer between -{MAX_QUANTITY} and {MAX_QUANTITY}" if signed else \
            f"an integer between {low} and {MAX_QUANTITY}"
        raise ValidationFailed(f"{name} must be {rule}.", details={name: [f"Must be {rule}."]})
    return value


def as_uuid(value: Any, name: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value)) if isinstance(value, str) else _bad_uuid(name)
    except ValueError:
        return _bad_uuid(name)


def _bad_uuid(name: str) -> uuid.UUID:
    raise ValidationFailed(f"{name} must be a UUID.", details={name: ["Must be a valid UUID."]})


@dataclass(frozen=True)
class ProductRef:
    id: uuid.UUID
    sku: str
    is_active: bool
    allow_backorder: bool = False


def product_refs(refs: Sequence[tuple[uuid.UUID | None, str | None]]) -> list[ProductRef | None]:
    """Resolve ``(product_id, sku)`` pairs through the catalog's selectors (SKUs case-insensitively,
    on its ``UPPER(sku)`` index). ``product_id`` wins when both are given; a SKU that then does not
    match is a ValidationFailed(code="sku_mismatch"). Unknown products come back as None."""
    ids = {pid for pid, _ in refs if pid is not None}
    skus = {sku for pid, sku in refs if pid is None and sku}
    by_id: dict[uuid.UUID, ProductRef] = {}
    by_sku: dict[str, ProductRef] = {}
    products = [*catalog_selectors.products_by_ids(product_ids=ids).values(),
                *catalog_selectors.products_by_skus(skus=skus).values()]
    ref: ProductRef | None
    for product in products:
        ref = ProductRef(product.id, product.sku, product.is_active, product.allow_backorder)
        by_id[product.id] = ref
        by_sku[product.sku.upper()] = ref
    out: list[ProductRef | None] = []
    for pid, sku in refs:
        ref = by_id.get(pid) if pid is not None else by_sku.get((sku or "").upper())
        if ref is not None and pid is not None and sku and sku.upper() != ref.sku.upper():
            raise ValidationFailed("sku does not match product_id.", code="sku_mismatch",
                                   details={"sku": [f"Product {pid} has SKU {ref.sku}."]})
        out.append(ref)
    return out


def product_ref(product_id: uuid.UUID | None, sku: str | None) -> ProductRef:
    if product_id is None and not sku:
        raise ValidationFailed("Give product_id or sku.",
                               details={"product_id": ["Give product_id or sku."]})
    if product_id is not None:
        product_id = as_uuid(product_id, "product_id")
    if sku is not None:
        sku = clean_text(sku, "sku", 64)
    ref = product_refs([(product_id, sku)])[0]
    if ref is None:
        raise NotFound("No such product.", code="product_not_found",
                       details={"product_id": str(product_id)} if product_id else {"sku": sku})
    return ref


def location_ref(location_id: Any, name: str = "location_id", *, active: bool = False) -> Location:
    location_id = as_uuid(location_id, name)
    return locations_checked([location_id], active=active, in_body=False)[location_id]
