"""Every write to the catalog (SPEC §4.1). Views, admin and commands call these; nothing else
changes a product row.

The services open ``transaction.atomic()`` without ``durable=True``: the admin wraps its saves in a
transaction of its own and calls them, and ``seed_demo`` may too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, ProtectedError, RestrictedError
from django.db.models.functions import Upper
from django.utils import timezone

from catalog import locks, selectors
from catalog.currencies import ISO_4217
from catalog.models import SKU_PATTERN, Product
from stateset.bulk import (
    CellInvalid,
    Mode,
    Outcome,
    RowError,
    RowResult,
    cell_text,
    check_json_value,
    duplicate_error,
    exists_error,
    first_of_each,
)
from stateset.db import update_versioned
from stateset.encoding import dumps
from stateset.errors import Conflict, NotFound, ValidationFailed
from stateset.inputs import clean_json_object, writable
from stateset.money import money_str, parse_money, to_decimal
from webhooks import services as webhooks

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


# --- events (SPEC §4.7): written to the outbox in the change's transaction -----------------------

_EVENT_FIELDS = ("sku", "name", "price", "currency", "is_active", "allow_backorder", "version")


def product_payload(product: Product | Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """How a ``product.*`` event describes a product (a row, or an import batch's dict of it):
    ``product_id``, ``sku``, ``name``, ``price`` (a decimal string), ``currency``, ``is_active``,
    ``allow_backorder``, ``version``, then ``extra`` (``changed``: the fields an update set)."""
    row = product if isinstance(product, Mapping) else {
        "id": product.id, **{name: getattr(product, name) for name in _EVENT_FIELDS}}
    return {"product_id": str(row["id"]), "sku": row["sku"], "name": row["name"],
            "price": money_str(row["price"], row["currency"]), "currency": row["currency"],
            "is_active": row["is_active"], "allow_backorder": row.get("allow_backorder", False),
            "version": row.get("version", 1), **extra}


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
    if "attributes" in out:
        out["attributes"] = clean_json_object(out["attributes"], "attributes")
    return out


def product_create(*, sku: str, name: str, price: Decimal, currency: str = "USD",
                   description: str = "", is_active: bool = True,
                   allow_backorder: bool = False, attributes: dict[str, Any] | None = None,
                   id: uuid.UUID | None = None) -> Product:
    """Insert one product (version 1).

    Raises DuplicateSku (409) when the SKU exists in any letter case, ValidationFailed when a
    database CHECK refuses the values. Schedules cache invalidation of the SKU key after commit;
    publishes ``product.created``."""
    values = _normalise({"sku": sku, "name": name, "price": price, "currency": currency,
                         "description": description, "is_active": is_active,
                         "allow_backorder": allow_backorder, "attributes": attributes or {}})
    if id is not None:
        values["id"] = id
    try:
        with transaction.atomic():
            product = Product.objects.create(**values)
            _invalidate(product_id=product.id, skus=[product.sku])
            webhooks.publish(event_type="product.created", payload=product_payload(product))
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
    commit; publishes ``product.updated`` naming the fields given (``changed``)."""
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
            webhooks.publish(event_type="product.updated",
                             payload=product_payload(product, changed=sorted(values)))
    except IntegrityError as exc:
        raise _translate(exc, sku=values.get("sku")) from None
    return product


def product_delete(*, product_id: uuid.UUID | str) -> DeleteResult:
    """Delete a product, or deactivate it when other rows still reference it.

    Locks the product row. The delete runs in a savepoint with constraints checked immediately, so a
    reference the ORM does not know about (a deferred foreign key) refuses it there and then; on
    ProtectedError, RestrictedError or IntegrityError the savepoint rolls back and the product is
    deactivated instead (``is_active = false``, version bumped). Raises NotFound (404). Invalidates
    the cached detail after commit; publishes ``product.deleted``, or ``product.updated``
    (``changed: ["is_active"]``) for a product deactivated instead."""
    with transaction.atomic():
        product = locks.lock_product(product_id)
        if product is None:
            raise NotFound("No product with this id.", code="product_not_found")
        _invalidate(product_id=product.id, skus=[product.sku])
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                gone = {"product_id": str(product.pk), "sku": product.sku}
                product.delete()
            webhooks.publish(event_type="product.deleted", payload=gone)
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
        webhooks.publish(event_type="product.updated",
                         payload=product_payload(product, changed=["is_active"]))
    return DeleteResult(deleted=False, product=product)


def products_set_active(*, product_ids: Iterable[uuid.UUID | str], is_active: bool) -> int:
    """Activate or deactivate many products at once (admin actions). Rows already in the wanted
    state are left alone (no version bump). Returns how many changed; invalidates each after
    commit; one ``product.updated`` (``changed: ["is_active"]``) per product changed, in one
    INSERT."""
    with transaction.atomic():
        changed = locks.lock_products_to_flip(product_ids, is_active=is_active)
        if changed:
            Product.objects.filter(pk__in=[pk for pk, _ in changed]).update(
                is_active=is_active, version=F("version") + 1, updated_at=timezone.now()
            )
            webhooks.publish_many([
                ("product.updated", product_payload(row, changed=["is_active"]))
                for row in Product.objects.filter(pk__in=[pk for pk, _ in changed])
                .order_by("pk").values("id", *_EVENT_FIELDS)])
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


# --- imports (SPEC §4.8): many rows at once, each answered on its own ----------------------------

MAX_NAME, MAX_DESCRIPTION, MAX_SKU = 255, 20_000, 64
MAX_PRICE = Decimal("9999999999.99")  # max_digits=12, decimal_places=2
CENT = Decimal("0.01")
_SKU_RE = re.compile(SKU_PATTERN)
_IMPORT_FIELDS = ("id", "sku", "name", "description", "price", "currency", "is_active",
                  "attributes", "allow_backorder")  # allow_backorder: read for the events only


def _clean_sku(value: Any) -> str:
    if value is None:
        raise CellInvalid("required", "This field is required.")
    sku = cell_text(value, MAX_SKU)
    if not _SKU_RE.match(sku):
        raise CellInvalid("invalid_sku",
                          "A SKU holds letters, digits, '.', '_' and '-', and starts "
                                         "with a letter or digit.")
    return sku


def _clean_price(value: Any) -> Decimal:
    price = to_decimal(value.strip() if isinstance(value, str) else value)  # a CSV cell: trimmed
    if price is None or not price.is_finite():
        raise CellInvalid("invalid", "A valid number is required.")
    if price < 0:
        raise CellInvalid("min_value", "Must be zero or more.")
    if price > MAX_PRICE:
        raise CellInvalid("max_digits", f"At most {MAX_PRICE}.")
    if price != price.quantize(Decimal("0.001")):
        raise CellInvalid("max_decimal_places", "At most 3 decimal places (the currency's digits).")
    return abs(price)  # -0.00 is stored as 0.00; the currency's digits are checked with the row


def _clean_currency(value: Any) -> str:
    code = cell_text(value, 3).upper()
    if code not in ISO_4217:
        raise CellInvalid("invalid_currency", "Use an ISO 4217 currency code such as USD.")
    return code


def _clean_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise CellInvalid("invalid", "Must be true or false.")
    return value


def _clean_attributes(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CellInvalid("invalid", "Must be a JSON object.")
    check_json_value(value)
    return value


_CLEAN = {
    "name": lambda v: cell_text(v, MAX_NAME),
    "description": lambda v: cell_text(v, MAX_DESCRIPTION, blank=True),
    "price": _clean_price,
    "currency": _clean_currency,
    "is_active": _clean_bool,
    "attributes": _clean_attributes,
}
_DEFAULTS = {"description": "", "currency": "USD", "is_active": True}

_UPDATE_MANY_SQL = """
UPDATE catalog_product AS p
SET sku = v.sku, name = v.name, description = v.description, price = v.price, currency = v.currency,
    is_active = v.is_active, attributes = v.attributes, version = p.version + 1, updated_at = %s
FROM (VALUES {values}) AS v (id, sku, name, description, price, currency, is_active, attributes)
WHERE p.id = v.id
RETURNING p.id, p.version
"""


def _clean_row(raw: Mapping[str, Any]) -> tuple[str | None, dict[str, Any], list[RowError]]:
    errors: list[RowError] = []
    sku = None
    try:
        sku = _clean_sku(raw.get("sku"))
    except CellInvalid as exc:
        errors.append(RowError("sku", exc.code, exc.message))
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "sku" or value is None:  # None: not given (kept, or the default of a new row)
            continue
        if name not in _CLEAN:
            errors.append(RowError(name, "unknown_field", "Not a product field."))
            continue
        try:
            values[name] = _CLEAN[name](value)
        except CellInvalid as exc:
            errors.append(RowError(name, exc.code, exc.message))
    return sku, values, errors


def products_import(*, rows: Sequence[Mapping[str, Any]], mode: str = Mode.UPSERT,
                    dry_run: bool = False) -> list[RowResult]:
    """Create or change many products by SKU (an import batch); one :class:`RowResult` per row.

    Each row holds ``sku`` and any of ``name, description, price, currency, is_active,
    attributes`` (None or absent: kept, or the default of a new product), checked as the API
    checks a product body; a new product needs ``name`` and ``price``. Rows whose values equal
    the stored ones are ``unchanged`` and not written. In ``mode="create"`` an existing SKU is a
    failed row (``already_exists``); a SKU repeated in ``rows`` fails its later rows
    (``duplicate_in_file``). Joins the caller's transaction; locks the existing products of the
    batch in primary-key order, inserts the new ones in one statement and updates the changed ones
    in another (version bumped), and invalidates their cached details and the search pages after
    commit. One ``product.created`` or ``product.updated`` per row written, all in one INSERT.
    ``dry_run`` answers what would happen and writes nothing."""
    results = [RowResult() for _ in rows]
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    for index, raw in enumerate(rows):
        sku, values, errors = _clean_row(raw)
        if errors or sku is None:
            results[index].fail(*errors)
        else:
            parsed.append((index, sku, values))
    cleaned = []
    for (index, sku, values), first in zip(parsed, first_of_each(s.upper() for _, s, _ in parsed),
                                           strict=True):
        if first:
            cleaned.append((index, sku, values))
        else:
            results[index].fail(duplicate_error("sku"))
    if not cleaned:
        return results
    with transaction.atomic():
        wanted = {sku.upper() for _, sku, _ in cleaned}
        if dry_run:
            found = list(Product.objects.alias(sku_upper=Upper("sku")).filter(sku_upper__in=wanted)
                         .values(*_IMPORT_FIELDS))
        else:
            found = locks.lock_products_by_skus(wanted, fields=_IMPORT_FIELDS)
        existing = {row["sku"].upper(): row for row in found}
        creates: list[tuple[int, dict[str, Any]]] = []
        updates: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        for index, sku, values in cleaned:
            row = existing.get(sku.upper())
            if "price" in values or "currency" in values:  # a price has its currency's digits
                currency = str(values.get("currency") or (row or _DEFAULTS)["currency"])
                try:
                    values["price"] = parse_money(values.get("price", (row or {}).get("price", 0)),
                                                  currency, "price")
                except ValidationFailed as exc:
                    results[index].fail(RowError("price", "max_decimal_places", exc.message))
                    continue
            if row is None:
                missing = [name for name in ("name", "price") if name not in values]
                if missing:
                    results[index].fail(*(RowError(name, "required", "A new product needs it.")
                                          for name in missing))
                    continue
                creates.append((index,
                                {"id": uuid.uuid4(), "sku": sku, "attributes": {}, **_DEFAULTS,
                                 **values}))
            elif mode == Mode.CREATE:
                results[index].fail(exists_error("sku"))
            else:
                diff = {k: v for k, v in {"sku": sku, **values}.items() if row[k] != v}
                if diff:
                    updates.append((index, row, {**row, **diff}))
                else:
                    results[index].outcome = Outcome.UNCHANGED
        if dry_run:
            for index, _ in creates:
                results[index].outcome = Outcome.CREATED
            for index, _, _ in updates:
                results[index].outcome = Outcome.UPDATED
            return results
        inserted = _insert_products([product for _, product in creates])
        for index, product in creates:
            if product["id"] in inserted:
                results[index].outcome = Outcome.CREATED
            else:  # another writer created this SKU since the batch read
                results[index].fail(RowError("sku", "conflict",
                                             "Created by another writer meanwhile; "
                                                                 "import the row again."))
        versions = _update_products([new for _, _, new in updates])
        for index, _, _ in updates:
            results[index].outcome = Outcome.UPDATED
        webhooks.publish_many(
            [("product.created", product_payload(product)) for _, product in creates
             if product["id"] in inserted]
            + [("product.updated", product_payload(
                {**new, "version": versions[new["id"]]},
                changed=sorted(k for k in new if k != "id" and new[k] != old[k])))
               for _, old, new in updates])
        # A new product has nothing cached under its new id, and a by-SKU entry left by a deleted
        # product is checked against the SKU on read (selectors.product_by_sku): only the changed
        # products' keys are dropped, and the search pages once per batch.
        keys = [key for _, old, new in updates
                for key in selectors.product_cache_keys(product_id=old["id"],
                                                        skus={old["sku"], new["sku"]})]
        if keys:
            selectors.product_cache.invalidate(*keys)
        if keys or inserted:
            selectors.product_cache.invalidate_group(selectors.SEARCH_GROUP)
        if any(old["sku"] != new["sku"] for _, old, new in updates):
            selectors.product_cache.invalidate_group(selectors.SKU_RENAMES)
    return results


_COPY_COLUMNS = ("id", "sku", "name", "description", "price", "currency", "is_active", "attributes",
                 "created_at", "updated_at", "version")


def _insert_products(products: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert new products; the ids that went in. ``COPY`` (in a savepoint) is the fast path; when
    another writer created one of the SKUs since the batch read, the savepoint rolls back and an
    ``INSERT ... ON CONFLICT DO NOTHING`` inserts the others."""
    if not products:
        return set()
    now = timezone.now()
    rows = [(p["id"], p["sku"], p["name"], p["description"], p["price"], p["currency"],
             p["is_active"], dumps(p["attributes"]).decode(), now, now, 1) for p in products]
    copy_sql = f"COPY {Product._meta.db_table} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
    try:
        with transaction.atomic(), connection.cursor() as cursor, connection.wrap_database_errors, \
                cursor.cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
        return {p["id"] for p in products}
    except IntegrityError:
        pass
    Product.objects.bulk_create([Product(**{k: v for k, v in zip(_COPY_COLUMNS, row, strict=True)
                                            if k != "attributes"}, attributes=p["attributes"])
                                 for row, p in zip(rows, products, strict=True)],
                                ignore_conflicts=True)
    return set(Product.objects.filter(id__in=[p["id"] for p in products]).values_list("id",
                                                                                      flat=True))


def _update_products(rows: list[dict[str, Any]]) -> dict[uuid.UUID, int]:
    """Write the rows' fields, version bumped, in one UPDATE; each row's new version."""
    if not rows:
        return {}
    params: list[Any] = [timezone.now()]
    for row in rows:
        params += [row["id"], row["sku"], row["name"], row["description"], row["price"],
                   row["currency"], row["is_active"], dumps(row["attributes"]).decode()]
    values = ", ".join(
        ["(%s::uuid, %s, %s, %s, %s::numeric, %s, %s::boolean, %s::jsonb)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_MANY_SQL.format(values=values), params)
        return dict(cursor.fetchall())
