"""Every write to the catalog (SPEC §4.1). Views, admin and commands call these; nothing else
changes a product row.

The services open ``transaction.atomic()`` without ``durable=True``: the admin wraps its saves in a
transaction of its own and calls them, and ``seed_demo`` may too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, ProtectedError, RestrictedError
from django.utils import timezone

from catalog import locks, selectors
from catalog.models import Product
from stateset.db import update_versioned
from stateset.errors import Conflict, NotFound, ValidationFailed
from stateset.inputs import writable
from stateset.money import parse_money

# Fields a caller may set; everything else (id, version, timestamps) belongs to the service.
WRITABLE_FIELDS = ("sku", "name", "description", "price", "currency", "is_active",
                   "allow_backorder", "attributes")


class DuplicateSku(Conflict):
    code, default_message = "duplicate_sku", "A product with this SKU already exists."


@dataclass(frozen=True)
class DeleteResult:
    """``deleted`` when the row is gone; otherwise ``product`` is the deactivated row."""

    deleted: bool
    product: Product | None = None


def _constraint_name(exc: IntegrityError) -> str:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) or ""


def _translate(exc: IntegrityError, *, sku: str | None) -> Exception:
    """Turn a constraint the database enforced into the domain error a client understands."""
    name = _constraint_name(exc)
    if name in ("product_sku_ci_uniq", "catalog_product_pkey"):
        return DuplicateSku(details={"sku": sku} if sku else {})
    if name == "product_price_non_negative":
        return ValidationFailed("price: must be zero or more.",
                                details={"price": ["Must be >= 0."]})
    if name == "product_currency_iso":
        return ValidationFailed("currency: use an ISO 4217 code.",
                                details={"currency": ["Invalid."]})
    if name == "product_sku_not_empty":
        return ValidationFailed("sku: may not be empty.", details={"sku": ["May not be empty."]})
    return exc


def _invalidate(*, product_id: uuid.UUID | str, skus: Iterable[str] = ()) -> None:
    selectors.product_cache.invalidate(*selectors.product_cache_keys(product_id=product_id,
                                                                     skus=skus))
    selectors.product_cache.invalidate_group(selectors.SEARCH_GROUP)


def _normalise(fields: dict[str, Any], currency: str | None = None) -> dict[str, Any]:
    """Clean writable fields; a price must have at most its currency's minor digits (``currency``:
    the product's current one when the change does not name one)."""
    out = writable(fields, WRITABLE_FIELDS)
    if "sku" in out:
        out["sku"] = out["sku"].strip()
    if "currency" in out:
        out["currency"] = out["currency"].strip().upper()
    if "price" in out:
        out["price"] = parse_money(out["price"], currency or out.get("currency") or "USD", "price")
    if "attributes" in out and out["attributes"] is None:
        out["attributes"] = {}
    return out


def product_create(*, sku: str, name: str, price: Decimal, currency: str = "USD",
                   description: str = "", is_active: bool = True,
                   attributes: dict[str, Any] | None = None,
                   id: uuid.UUID | None = None) -> Product:
    """Insert one product (version 1).

    Raises DuplicateSku (409) when the SKU exists in any letter case, ValidationFailed when a
    database CHECK refuses the values. Schedules cache invalidation of the SKU key after commit."""
    values = _normalise({"sku": sku, "name": name, "price": price, "currency": currency,
                         "description": description, "is_active": is_active,
                         "attributes": attributes or {}})
    if id is not None:
        values["id"] = id
    try:
        with transaction.atomic():
            product = Product.objects.create(**values)
            _invalidate(product_id=product.id, skus=[product.sku])
    except IntegrityError as exc:
        raise _translate(exc, sku=values["sku"]) from None
    return product


def product_update(*, product_id: uuid.UUID | str, fields: dict[str, Any],
                   expected_version: int | None = None) -> Product:
    """Change the given fields and bump ``version`` in one ``UPDATE``.

    ``expected_version`` (the client's ``If-Match``) is part of the UPDATE's WHERE clause, so a
    write that slipped in between the client's read and this call still answers PreconditionFailed
    (412). Raises NotFound (404), DuplicateSku (409), ValidationFailed (422). A new SKU is copied to
    the product's stock rows in the same transaction (by the inventory app's trigger). A price has
    at most its currency's minor digits. Invalidates the cached detail (by id and by SKU) after
    commit."""
    currency = None
    # the other half of the pair is the stored one
    if ("price" in fields) != ("currency" in fields):
        current = Product.objects.filter(pk=product_id).values("price", "currency").first()
        if current is not None:
            currency = current["currency"]
            if "currency" in fields:
                _normalise({"price": current["price"]}, str(fields["currency"]).strip().upper())
    values = _normalise(fields, currency)
    if not values:
        raise ValidationFailed("Give at least one field to change.", code="empty_update")
    try:
        with transaction.atomic():
            update_versioned(Product, pk=product_id, expected_version=expected_version,
                             values=values,
                             not_found=NotFound("No product with this id.",
                                                code="product_not_found"))
            product = Product.objects.get(pk=product_id)
            if "sku" in values:
                # Stock rows keep a copy of the SKU; a trigger of the inventory app rewrites it in
                # this transaction. Their cached details are dropped with the rename.
                selectors.product_cache.invalidate_group(selectors.SKU_RENAMES)
            _invalidate(product_id=product.id, skus=[product.sku])
    except IntegrityError as exc:
        raise _translate(exc, sku=values.get("sku")) from None
    return product


def product_delete(*, product_id: uuid.UUID | str) -> DeleteResult:
    """Delete a product, or deactivate it when other rows still reference it.

    Locks the product row. The delete runs in a savepoint with constraints checked immediately, so a
    reference the ORM does not know about (a deferred foreign key) refuses it there and then; on
    ProtectedError, RestrictedError or IntegrityError the savepoint rolls back and the product is
    deactivated instead (``is_active = false``, version bumped). Raises NotFound (404). Invalidates
    the cached detail after commit."""
    with transaction.atomic():
        product = locks.lock_product(product_id)
        if product is None:
            raise NotFound("No product with this id.", code="product_not_found")
        _invalidate(product_id=product.id, skus=[product.sku])
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                product.delete()
            return DeleteResult(deleted=True)
        except (ProtectedError, RestrictedError, IntegrityError):
            pass
        finally:
            # Back to Django's default for the rest of the transaction (as check_constraints()
            # does).
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        Product.objects.filter(pk=product.pk).update(is_active=False, version=F("version") + 1,
                                                     updated_at=timezone.now())
        product.refresh_from_db()
    return DeleteResult(deleted=False, product=product)


def products_set_active(*, product_ids: Iterable[uuid.UUID | str], is_active: bool) -> int:
    """Activate or deactivate many products at once (admin actions). Rows already in the wanted
    state are left alone (no version bump). Returns how many changed; invalidates each after
    commit."""
    with transaction.atomic():
        changed = locks.lock_products_to_flip(product_ids, is_active=is_active)
        if changed:
            Product.objects.filter(pk__in=[pk for pk, _ in changed]).update(
                is_active=is_active, version=F("version") + 1, updated_at=timezone.now()
            )
        for pk, sku in changed:
            _invalidate(product_id=pk, skus=[sku])
    return len(changed)


def products_bulk_create(*, rows: list[dict[str, Any]], batch_size: int = 1000) -> int:
    """Insert many products in batches, skipping any whose id or SKU already exists (so a re-run
    inserts nothing). Each row needs ``id`` and the writable fields. Returns how many were new.
    For seeding and imports; nothing is cached for rows that did not exist."""
    objs = []
    for row in rows:
        values = _normalise({k: v for k, v in row.items() if k != "id"})
        objs.append(Product(id=row["id"], **values))
    ids = [obj.id for obj in objs]
    with transaction.atomic():
        before = Product.objects.filter(pk__in=ids).count()
        Product.objects.bulk_create(objs, batch_size=batch_size, ignore_conflicts=True)
        after = Product.objects.filter(pk__in=ids).count()
        if after > before:
            selectors.product_cache.invalidate_group(selectors.SEARCH_GROUP)
    return after - before


def product_ensure(*, id: uuid.UUID, sku: str, name: str, price: Decimal, currency: str = "USD",
                   description: str = "", is_active: bool = True,
                   attributes: dict[str, Any] | None = None) -> tuple[Product, bool]:
    """Make the product with this id exist with these values (``seed_demo``'s fixed rows): create
    it, or update the fields that differ. Returns (product, created). Raises DuplicateSku when
    another product already holds the SKU."""
    wanted = _normalise({"sku": sku, "name": name, "price": price, "currency": currency,
                         "description": description, "is_active": is_active,
                         "attributes": attributes or {}})
    existing = Product.objects.filter(pk=id).first()
    if existing is None:
        return product_create(id=id, **wanted), True
    diff = {k: v for k, v in wanted.items() if getattr(existing, k) != v}
    if not diff:
        return existing, False
    return product_update(product_id=id, fields=diff), False
