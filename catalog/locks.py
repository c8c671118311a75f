"""Every row lock of the catalog app (STYLE.md "Locks in one place per app"). Products are locked
alone (rank PRODUCT in ``stateset/locking.py``), by primary key."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models.functions import Upper

from catalog.models import Product
from stateset.locking import Rank, acquired


def lock_product(product_id: uuid.UUID | str) -> Product | None:
    product = Product.objects.select_for_update().filter(pk=product_id).first()
    if product is not None:
        acquired(Rank.PRODUCT, [product.pk])
    return product


def lock_products_to_flip(product_ids: Iterable[uuid.UUID | str], *,
                          is_active: bool) -> list[tuple[uuid.UUID, str]]:
    """(id, sku) of the given products whose ``is_active`` differs from ``is_active``, locked in
    primary-key order."""
    rows = list(Product.objects.filter(pk__in=list(product_ids)).exclude(is_active=is_active)
                .select_for_update().order_by("pk").values_list("pk", "sku"))
    acquired(Rank.PRODUCT, [pk for pk, _ in rows])
    return rows


def lock_products_by_skus(skus: Iterable[str], *, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The products whose upper-cased SKU is in ``skus`` (``fields`` of each, as dicts), locked in
    primary-key order (an import batch: compare, then update under the lock)."""
    rows = list(Product.objects.alias(sku_upper=Upper("sku")).filter(sku_upper__in=list(skus))
                .select_for_update().order_by("pk").values(*fields))
    acquired(Rank.PRODUCT, [row["id"] for row in rows])
    return rows
