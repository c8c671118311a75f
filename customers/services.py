"""Every write to customers and addresses (SPEC §4.2). Views, admin and commands call these.

The services open ``transaction.atomic()`` without ``durable=True``: the admin wraps its saves in a
transaction of its own and calls them, and ``seed_demo`` may too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from customers import locks, selectors
from customers.countries import ISO_3166_ALPHA2
from customers.models import Address, Customer, phone_validator
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
from stateset.db import save_versioned, update_versioned
from stateset.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from stateset.inputs import clean_json_object, writable
from webhooks import services as webhooks

CUSTOMER_FIELDS = ("email", "first_name", "last_name", "phone", "metadata")
ADDRESS_FIELDS = ("kind", "name", "line1", "line2", "city", "region", "postal_code", "country",
                  "phone", "is_default")


class DuplicateEmail(Conflict):
    code, default_message = "duplicate_email", "A customer with this email already exists."


def _constraint_name(exc: IntegrityError) -> str:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) or ""


def _translate(exc: IntegrityError, *, email: str | None = None) -> Exception:
    name = _constraint_name(exc)
    if name in ("customer_email_ci_uniq", "customers_customer_pkey"):
        return DuplicateEmail(details={"email": email} if email else {})
    if name == "address_one_default_per_kind":
        return Conflict("Another default address of this kind was just set; retry.",
                        code="default_address_conflict")
    if name == "address_country_iso":
        return ValidationFailed("country: use an ISO 3166-1 alpha-2 code.",
                                details={"country": ["Invalid."]})
    if name == "address_kind_valid":
        return ValidationFailed("kind: shipping or billing.", details={"kind": ["Invalid."]})
    return exc


def normalise_email(email: str) -> str:
    """Trimmed, with the domain lower-cased (the local part is the mailbox owner's business;
    uniqueness ignores case anyway)."""
    email = email.strip()
    local, at, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}" if at else email


def _customer_values(fields: dict[str, Any]) -> dict[str, Any]:
    values = writable(fields, CUSTOMER_FIELDS)
    if "email" in values:
        values["email"] = normalise_email(values["email"])
    if "metadata" in values:
        values["metadata"] = clean_json_object(values["metadata"], "metadata")
    return values


def _invalidate(customer_id: uuid.UUID | str) -> None:
    selectors.customer_cache.invalidate(selectors.detail_key(customer_id))


def _touch(customer_id: uuid.UUID | str) -> None:
    """A change to a customer's addresses changes the customer's representation: bump its version
    (so its ETag moves) and drop its cached detail after commit."""
    Customer.objects.filter(pk=customer_id).update(version=F("version") + 1,
                                                   updated_at=timezone.now())
    _invalidate(customer_id)


# --- events (SPEC §4.7): written to the outbox in the change's transaction -----------------------


def _publish_updated(customer_id: uuid.UUID | str, changed: list[str], **extra: Any) -> None:
    """``customer.updated`` naming what changed (``addresses`` for an address, with its id and
    ``address_change``: created, updated or deleted)."""
    row = Customer.objects.filter(pk=customer_id).values("email", "version").get()
    webhooks.publish(event_type="customer.updated", payload={
        "customer_id": str(customer_id), "email": row["email"], "version": row["version"],
        "changed": changed, **extra,
    })


# --- customers -----------------------------------------------------------------------------------


def customer_create(*, email: str, first_name: str = "", last_name: str = "", phone: str = "",
                    metadata: dict[str, Any] | None = None,
                    id: uuid.UUID | None = None) -> Customer:
    """Insert one customer (version 1) and publish ``customer.created``. Raises DuplicateEmail (409)
    when the email exists in any letter case, also when a concurrent request inserted it first (the
    unique index decides)."""
    values = _customer_values({"email": email, "first_name": first_name, "last_name": last_name,
                               "phone": phone, "metadata": metadata or {}})
    if id is not None:
        values["id"] = id
    try:
        with transaction.atomic():
            customer = Customer.objects.create(**values)
            webhooks.publish(event_type="customer.created", payload={
                "customer_id": str(customer.id), "email": customer.email,
                "first_name": customer.first_name, "last_name": customer.last_name,
            })
    except IntegrityError as exc:
        raise _translate(exc, email=values["email"]) from None
    return customer


def customer_update(*, customer_id: uuid.UUID | str, fields: dict[str, Any],
                    expected_version: int | None = None) -> Customer:
    """Change the given fields and bump ``version`` in one ``UPDATE`` whose WHERE clause holds
    ``expected_version`` (If-Match). Raises NotFound (404), PreconditionFailed (412),
    DuplicateEmail (409). Invalidates the cached detail after commit; publishes
    ``customer.updated``."""
    values = _customer_values(fields)
    if not values:
        raise ValidationFailed("Give at least one field to change.", code="empty_update")
    try:
        with transaction.atomic():
            update_versioned(Customer, pk=customer_id, expected_version=expected_version,
                             values=values,
                             not_found=NotFound("No customer with this id.",
                                                code="customer_not_found"))
            customer = Customer.objects.get(pk=customer_id)
            _invalidate(customer.id)
            webhooks.publish(event_type="customer.updated", payload={
                "customer_id": str(customer.id), "email": customer.email,
                "version": customer.version, "changed": sorted(values),
            })
    except IntegrityError as exc:
        raise _translate(exc, email=values.get("email")) from None
    return customer


def customers_bulk_create(*, rows: list[dict[str, Any]], batch_size: int = 1000) -> int:
    """Insert many customers, skipping any whose id or email (any case) exists; for seeding and
    imports. Each row needs ``id`` and ``email``. Returns how many were new."""
    objs = [Customer(id=row["id"], **_customer_values({k: v for k, v in row.items() if k != "id"}))
            for row in rows]
    ids = [obj.id for obj in objs]
    with transaction.atomic():
        before = Customer.objects.filter(pk__in=ids).count()
        Customer.objects.bulk_create(objs, batch_size=batch_size, ignore_conflicts=True)
        after = Customer.objects.filter(pk__in=ids).count()
    return after - before


def customer_ensure(*, id: uuid.UUID, email: str, **fields: Any) -> tuple[Customer, bool]:
    """Make the customer with this id exist with these values (``seed_demo``'s fixed rows).
    Returns (customer, created). Raises DuplicateEmail when another customer holds the email."""
    wanted = _customer_values({"email": email, **fields})
    existing = Customer.objects.filter(pk=id).first()
    if existing is None:
        return customer_create(id=id, **wanted), True
    diff = {k: v for k, v in wanted.items() if getattr(existing, k) != v}
    if not diff:
        return existing, False
    return customer_update(customer_id=id, fields=diff), False


# --- addresses -----------------------------------------------------------------------------------


def _address_values(fields: dict[str, Any]) -> dict[str, Any]:
    values = writable(fields, ADDRESS_FIELDS)
    if "country" in values:
        values["country"] = values["country"].strip().upper()
    return values


def _lock_customer(customer_id: uuid.UUID | str) -> None:
    """Address writes of one customer run one at a time: the lock makes "un-default the previous
    default, then insert" safe, and the partial unique index is the backstop."""
    if not locks.lock_customer(customer_id):
        raise NotFound("No customer with this id.", code="customer_not_found")


def _undefault_others(*, customer_id: uuid.UUID | str, kind: str,
                      keep: uuid.UUID | None = None) -> None:
    """The customer's default of ``kind`` (but ``keep``) stops being the default; its version
    moves."""
    others = Address.objects.filter(customer_id=customer_id, kind=kind, is_default=True)
    if keep is not None:
        others = others.exclude(pk=keep)
    others.update(is_default=False, version=F("version") + 1, updated_at=timezone.now())


def address_create(*, customer_id: uuid.UUID | str, kind: str, line1: str, city: str, country: str,
                   name: str = "", line2: str = "", region: str = "", postal_code: str = "",
                   phone: str = "", is_default: bool | None = None) -> Address:
    """Add an address to a customer.

    Locks the customer row. ``is_default=None`` makes the first address of a kind the default.
    A new default un-defaults the previous default of its kind in the same transaction. Bumps the
    customer's version, invalidates its cached detail after commit and publishes
    ``customer.updated``. Raises NotFound (404), ValidationFailed (422)."""
    values = _address_values({"kind": kind, "line1": line1, "city": city, "country": country,
                              "name": name, "line2": line2, "region": region,
                              "postal_code": postal_code, "phone": phone})
    try:
        with transaction.atomic():
            _lock_customer(customer_id)
            if is_default is None:
                is_default = not Address.objects.filter(customer_id=customer_id,
                                                        kind=values["kind"],
                                                        is_default=True).exists()
            elif is_default:
                _undefault_others(customer_id=customer_id, kind=values["kind"])
            address = Address.objects.create(customer_id=customer_id, is_default=is_default,
                                             **values)
            _touch(customer_id)
            _publish_updated(customer_id, ["addresses"], address_id=str(address.id),
                             address_change="created")
    except IntegrityError as exc:
        raise _translate(exc) from None
    return address


def _locked_address(*, address_id: uuid.UUID | str, customer_id: uuid.UUID | str | None,
                    expected_version: int | None) -> Address:
    """The address, read under its customer's lock (every address write of a customer holds it, so
    the version compared here cannot move before the write). ``customer_id`` None: whosever it is
    (the admin). NotFound for a missing customer or an address of another customer;
    PreconditionFailed when ``expected_version`` (If-Match) is not the address's."""
    if customer_id is None:
        customer_id = Address.objects.filter(pk=address_id).values_list("customer_id",
                                                                        flat=True).first()
        if customer_id is None:
            raise NotFound("No address with this id.", code="address_not_found")
    _lock_customer(customer_id)
    address = Address.objects.filter(pk=address_id, customer_id=customer_id).first()
    if address is None:
        raise NotFound("This customer has no address with this id.", code="address_not_found")
    if expected_version is not None and address.version != expected_version:
        raise PreconditionFailed(details={"current_version": address.version,
                                          "expected_version": expected_version})
    return address


def address_update(*, address_id: uuid.UUID | str, fields: dict[str, Any],
                   customer_id: uuid.UUID | str | None = None,
                   expected_version: int | None = None) -> Address:
    """Change an address (API PATCH/PUT, admin).

    Locks the customer row. Making it the default (``is_default`` true, or a default moved to
    another ``kind``) un-defaults the other default of its kind in the same transaction;
    ``is_default`` false leaves the kind without a default. Bumps the address's and the customer's
    versions, invalidates the customer's cached detail after commit, publishes ``customer.updated``.
    Raises NotFound (404; also for ``customer_id`` not owning it), PreconditionFailed (412),
    ValidationFailed (422: also for no field at all)."""
    values = _address_values(fields)
    if not values:
        raise ValidationFailed("Give at least one field to change.", code="empty_update")
    if "is_default" in values and not isinstance(values["is_default"], bool):
        raise ValidationFailed("is_default: true or false.",
                               details={"is_default": ["Must be a boolean."]})
    try:
        with transaction.atomic():
            address = _locked_address(address_id=address_id, customer_id=customer_id,
                                      expected_version=expected_version)
            kind = values.get("kind", address.kind)
            if values.get("is_default", address.is_default):
                _undefault_others(customer_id=address.customer_id, kind=kind, keep=address.pk)
            save_versioned(address, values)
            _touch(address.customer_id)
            _publish_updated(address.customer_id, ["addresses"], address_id=str(address.id),
                             address_change="updated")
    except IntegrityError as exc:
        raise _translate(exc) from None
    return address


def address_delete(*, address_id: uuid.UUID | str, customer_id: uuid.UUID | str | None = None,
                   expected_version: int | None = None) -> None:
    """Remove an address (API DELETE, admin). Deleting the default leaves its kind without one;
    orders keep their own snapshots. Locks the customer row; bumps its version, invalidates its
    cached detail after commit, publishes ``customer.updated``. Raises NotFound (404),
    PreconditionFailed (412)."""
    with transaction.atomic():
        address = _locked_address(address_id=address_id, customer_id=customer_id,
                                  expected_version=expected_version)
        Address.objects.filter(pk=address.pk).delete()
        _touch(address.customer_id)
        _publish_updated(address.customer_id, ["addresses"], address_id=str(address.id),
                         address_change="deleted")


def addresses_bulk_create(*, rows: list[dict[str, Any]], batch_size: int = 1000) -> int:
    """Insert many addresses, skipping those whose id exists or that would be a second default of a
    kind; for seeding. Each row needs ``id`` and ``customer_id``. Returns how many were new."""
    objs = [Address(id=row["id"], customer_id=row["customer_id"],
                    **_address_values({k: v for k,
                                       v in row.items() if k not in ("id", "customer_id")}))
            for row in rows]
    ids = [obj.id for obj in objs]
    with transaction.atomic():
        before = Address.objects.filter(pk__in=ids).count()
        Address.objects.bulk_create(objs, batch_size=batch_size, ignore_conflicts=True)
        after = Address.objects.filter(pk__in=ids).count()
    return after - before


# --- imports (SPEC §4.8): many customers at once, each row answered on its own --------------------

IMPORT_FIELDS = ("first_name", "last_name", "phone")
IMPORT_ADDRESS_FIELDS = selectors.EXPORT_ADDRESS_FIELDS
ADDRESS_KINDS = (Address.Kind.SHIPPING.value, Address.Kind.BILLING.value)
IMPORT_COLUMNS = selectors.EXPORT_COLUMNS  # an export re-imports as it is
_LIMITS = {"first_name": 100, "last_name": 100, "phone": 32, "name": 200, "line1": 200,
           "line2": 200, "city": 100, "region": 100, "postal_code": 20, "country": 2}
_ADDRESS_REQUIRED = ("line1", "city", "country")
_CUSTOMER_ROW = ("id", "email", *IMPORT_FIELDS)


def _clean_value(name: str, value: Any) -> str:
    text = cell_text(value, _LIMITS[name], blank=True)
    if name == "phone" and text:
        try:
            phone_validator(text)
        except ValidationError:
            raise CellInvalid("invalid_phone",
                              "Digits, spaces and ( ) . - only, optionally starting "
                                               "with +.") from None
    if name == "country" and text:
        text = text.upper()
        if text not in ISO_3166_ALPHA2:
            raise CellInvalid("invalid_country",
                              "Use an ISO 3166-1 alpha-2 country code such as US.")
    return text


def _clean_email(value: Any) -> str:
    if value is None:
        raise CellInvalid("required", "This field is required.")
    email = cell_text(value, 254)
    try:
        validate_email(email)
    except ValidationError:
        raise CellInvalid("invalid_email", "Enter a valid email address.") from None
    return normalise_email(email)


def _clean_customer_row(raw: Mapping[str, Any]) -> tuple[str | None, dict[str, Any],
                                                         dict[str, dict[str, str]], list[RowError]]:
    """(email, customer fields, given address fields by kind, errors). A kind whose given cells
    are all empty is not given at all."""
    errors: list[RowError] = []
    email = None
    try:
        email = _clean_email(raw.get("email"))
    except CellInvalid as exc:
        errors.append(RowError("email", exc.code, exc.message))
    fields: dict[str, Any] = {}
    addresses: dict[str, dict[str, str]] = {kind: {} for kind in ADDRESS_KINDS}
    for column, value in raw.items():
        if column == "email" or value is None:
            continue
        kind, _, name = column.partition("_")
        target = addresses[kind] if kind in addresses and name in IMPORT_ADDRESS_FIELDS else None
        if target is None and column not in IMPORT_FIELDS:
            errors.append(RowError(column, "unknown_field", "Not a customer field."))
            continue
        try:
            cleaned = _clean_value(name if target is not None else column, value)
        except CellInvalid as exc:
            errors.append(RowError(column, exc.code, exc.message))
            continue
        if target is not None:
            target[name] = cleaned
        else:
            fields[column] = cleaned
    given = {kind: values for kind, values in addresses.items() if any(values.values())}
    return email, fields, given, errors


def _address_errors(kind: str, address: dict[str, str]) -> list[RowError]:
    return [RowError(f"{kind}_{name}", "required", "An address needs it.")
            for name in _ADDRESS_REQUIRED if not address.get(name)]


def customers_import(*, rows: Sequence[Mapping[str, Any]], mode: str = Mode.UPSERT,
                     dry_run: bool = False) -> list[RowResult]:
    """Create or change many customers by email (an import batch); one :class:`RowResult` per row.

    Each row holds ``email`` and any of ``first_name, last_name, phone`` and ``shipping_<field>`` /
    ``billing_<field>`` (``name, line1, line2, city, region, postal_code, country, phone``), checked
    as the API checks them; None or absent: kept. The address columns of a kind describe the
    customer's default address of that kind: it is created when there is none, changed in place
    when it differs (the fields not given are kept), left alone when every given cell of the kind
    is empty. Equal rows are ``unchanged`` and not written. ``mode="create"``: an existing email
    is ``already_exists``; an email repeated in ``rows`` fails its later rows
    (``duplicate_in_file``). Joins the caller's transaction; locks the batch's existing customers
    in primary-key order (so their addresses change one writer at a time), inserts and updates
    customers and addresses in a statement each, bumps the version of every changed customer and
    invalidates their cached details after commit; one ``customer.created`` or ``customer.updated``
    per customer written, all in one INSERT. ``dry_run`` answers and writes nothing."""
    results = [RowResult() for _ in rows]
    parsed = []
    for index, raw in enumerate(rows):
        email, fields, addresses, errors = _clean_customer_row(raw)
        if errors or email is None:
            results[index].fail(*errors)
        else:
            parsed.append((index, email, fields, addresses))
    cleaned = []
    for item, first in zip(parsed, first_of_each(p[1].lower() for p in parsed), strict=True):
        if first:
            cleaned.append(item)
        else:
            results[item[0]].fail(duplicate_error("email"))
    if not cleaned:
        return results
    with transaction.atomic():
        wanted = {email.lower() for _, email, _, _ in cleaned}
        if dry_run:
            found = list(
                Customer.objects.alias(email_lower=Lower("email")).filter(email_lower__in=wanted)
                         .values(*_CUSTOMER_ROW))
        else:
            found = locks.lock_customers_by_emails(wanted, fields=_CUSTOMER_ROW)
        existing = {row["email"].lower(): row for row in found}
        defaults: dict[tuple[uuid.UUID, str], dict[str, Any]] = {
            (row["customer_id"], row["kind"]): row
            for row in Address.objects.filter(customer_id__in=[r["id"] for r in found],
                                              is_default=True)
            .values("id", "customer_id", "kind", *IMPORT_ADDRESS_FIELDS)
        }
        new_customers: list[tuple[int, Customer]] = []
        changed_customers: dict[uuid.UUID, dict[str, Any]] = {}
        changed_fields: dict[uuid.UUID, list[str]] = {}
        new_addresses: list[tuple[int, Address]] = []
        changed_addresses: list[dict[str, Any]] = []
        for index, email, fields, addresses in cleaned:
            row = existing.get(email.lower())
            if row is not None and mode == Mode.CREATE:
                results[index].fail(exists_error("email"))
                continue
            customer_id = row["id"] if row is not None else uuid.uuid4()
            errors = []
            row_new_addresses, row_changed_addresses = [], []
            for kind, given in addresses.items():
                current = defaults.get((customer_id, kind))
                merged = {**{name: "" for name in IMPORT_ADDRESS_FIELDS},
                          **({name: current[name] for name in IMPORT_ADDRESS_FIELDS} if current
                             else {}),
                          **given}
                errors += _address_errors(kind, merged)
                if current is None:
                    row_new_addresses.append(Address(id=uuid.uuid4(), customer_id=customer_id,
                                                     kind=kind, is_default=True, **merged))
                elif any(current[name] != merged[name] for name in IMPORT_ADDRESS_FIELDS):
                    row_changed_addresses.append({"id": current["id"], **merged})
            if errors:
                results[index].fail(*errors)
                continue
            new_addresses += [(index, address) for address in row_new_addresses]
            changed_addresses += row_changed_addresses
            if row is None:
                new_customers.append((index, Customer(id=customer_id, email=email, metadata={},
                                                      **{"first_name": "", "last_name": "",
                                                         "phone": "", **fields})))
                results[index].outcome = Outcome.CREATED
                continue
            diff = {k: v for k, v in {"email": email, **fields}.items() if row[k] != v}
            if diff or row_new_addresses or row_changed_addresses:
                changed_customers[customer_id] = {**row, **diff}
                changed_fields[customer_id] = sorted(
                    [*diff, *(["addresses"] if row_new_addresses or row_changed_addresses
                              else [])])
                results[index].outcome = Outcome.UPDATED
            else:
                results[index].outcome = Outcome.UNCHANGED
        if dry_run:
            return results
        inserted = _insert_customers([customer for _, customer in new_customers])
        for index, customer in new_customers:
            if customer.id not in inserted:  # another writer took this email since the batch read
                results[index].fail(RowError("email", "conflict",
                                             "Created by another writer meanwhile; "
                                                                  "import the row again."))
        created = [address for index, address in new_addresses if results[index].ok]
        if created:
            Address.objects.bulk_create(created)
        versions = _update_customers(list(changed_customers.values()))
        _update_addresses(changed_addresses)
        webhooks.publish_many(
            [("customer.created", {"customer_id": str(customer.id), "email": customer.email,
                                   "first_name": customer.first_name,
                                   "last_name": customer.last_name})
             for _, customer in new_customers if customer.id in inserted]
            + [("customer.updated", {"customer_id": str(pk), "email": row["email"],
                                     "version": versions[pk], "changed": changed_fields[pk]})
               for pk, row in changed_customers.items()])
        touched = [*inserted, *changed_customers]
        if touched:
            selectors.customer_cache.invalidate(
                *(selectors.customer_cache.key(pk) for pk in touched))
    return results


def _insert_customers(customers: list[Customer]) -> set[uuid.UUID]:
    if not customers:
        return set()
    Customer.objects.bulk_create(customers, ignore_conflicts=True)
    return set(Customer.objects.filter(id__in=[c.id for c in customers]).values_list("id",
                                                                                     flat=True))


def _update_customers(rows: list[dict[str, Any]]) -> dict[uuid.UUID, int]:
    """New values, version + 1 (a changed address changes the customer's representation too); the
    new version of each."""
    if not rows:
        return {}
    params: list[Any] = [timezone.now()]
    for row in rows:
        params += [row["id"], row["email"], row["first_name"], row["last_name"], row["phone"]]
    values = ", ".join(["(%s::uuid, %s, %s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(f"""
            UPDATE customers_customer AS c
            SET email = v.email, first_name = v.first_name, last_name = v.last_name,
                phone = v.phone,
                version = c.version + 1, updated_at = %s
            FROM (VALUES {values}) AS v (id, email, first_name, last_name, phone)
            WHERE c.id = v.id
            RETURNING c.id, c.version""", params)
        return dict(cursor.fetchall())


def _update_addresses(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    params: list[Any] = []
    for row in rows:
        params += [row["id"], *(row[name] for name in IMPORT_ADDRESS_FIELDS)]
    values = ", ".join(["(%s::uuid, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    columns = ", ".join(IMPORT_ADDRESS_FIELDS)
    assignments = ", ".join(f"{name} = v.{name}" for name in IMPORT_ADDRESS_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE customers_address AS a SET {assignments} "
                       f"FROM (VALUES {values}) AS v (id, {columns}) WHERE a.id = v.id", params)
