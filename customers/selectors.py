"""Every read of customers and addresses (SPEC §4.2).

:func:`render_customer` and :func:`render_address` define the output shapes; list pages render
``.values()`` rows with them and details render the same rows, so the shapes cannot drift apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from customers.models import Address, Customer
from stateset.cache import EntityCache
from stateset.csvio import keyset_chunks
from stateset.db import CompiledRead
from stateset.pagination import Sort

CUSTOMER_FIELDS = ("id", "email", "first_name", "last_name", "phone", "metadata", "created_at",
                   "updated_at", "version")
ADDRESS_FIELDS = ("id", "customer_id", "kind", "name", "line1", "line2", "city", "region",
                  "postal_code", "country", "phone", "is_default", "created_at", "updated_at",
                  "version")

customer_cache = EntityCache("customers")
# Part of the cache key: a detail cached in an older shape (before addresses had versions) is
# never served in the new one.
DETAIL_SHAPE = "v2"


def detail_key(customer_id: uuid.UUID | str) -> str:
    return customer_cache.key(DETAIL_SHAPE, customer_id)


def render_customer(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "email": row["email"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "phone": row["phone"],
        "metadata": row["metadata"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
    }


def render_customers(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [render_customer(row) for row in rows]


def render_address(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "customer_id": str(row["customer_id"]),
        "kind": row["kind"],
        "name": row["name"],
        "line1": row["line1"],
        "line2": row["line2"],
        "city": row["city"],
        "region": row["region"],
        "postal_code": row["postal_code"],
        "country": row["country"],
        "phone": row["phone"],
        "is_default": row["is_default"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
    }


def render_addresses(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [render_address(row) for row in rows]


def customer_data(customer: Customer) -> dict[str, Any]:
    return render_customer({field: getattr(customer, field) for field in CUSTOMER_FIELDS})


def address_data(address: Address) -> dict[str, Any]:
    return render_address({field: getattr(address, field) for field in ADDRESS_FIELDS})


# --- customers -----------------------------------------------------------------------------------


def customer_list(*, filters: dict[str, Any]) -> QuerySet[Customer, dict[str, Any]]:
    """``.values()`` rows for ``GET /customers``.

    ``email``: exact in any case (the lower(email) unique index). ``search``: a prefix of the email,
    the first or the last name, or "first last" — each a ``LIKE 'x%'`` on an indexed lower() with
    text_pattern_ops, so the planner combines index scans instead of reading the table."""
    rows = _aliased(Customer.objects.all())
    if filters.get("email"):
        rows = rows.filter(email_lower=filters["email"].strip().lower())
    if filters.get("search") and filters["search"].strip():
        rows = rows.filter(_search_condition(filters["search"]))
    values: QuerySet[Customer, dict[str, Any]] = rows.values(*CUSTOMER_FIELDS)
    return values


def _aliased(queryset: QuerySet[Customer]) -> QuerySet[Any]:
    # QuerySet[Any]: django-stubs does not see alias() names, which the callers filter on.
    return queryset.alias(
        email_lower=Lower("email"), first_lower=Lower("first_name"), last_lower=Lower("last_name")
    )


def _search_condition(term: str) -> Q:
    term = " ".join(term.lower().split())
    condition = Q(email_lower__startswith=term)
    if "@" not in term:
        condition |= Q(first_lower__startswith=term) | Q(last_lower__startswith=term)
        first, _, rest = term.partition(" ")
        if rest:
            condition |= Q(first_lower__startswith=first, last_lower__startswith=rest)
    return condition


def customer_search_filter(queryset: QuerySet[Customer], term: str) -> QuerySet[Customer]:
    """Restrict ``queryset`` to customers matching ``term`` (API ``?search=`` and the admin)."""
    if not term.strip():
        return queryset
    return _aliased(queryset).filter(_search_condition(term))


def _load_detail(customer_id: uuid.UUID | str) -> dict[str, Any] | None:
    row = Customer.objects.filter(pk=customer_id).values(*CUSTOMER_FIELDS).first()
    if row is None:
        return None
    addresses = Address.objects.filter(customer_id=customer_id).order_by("created_at", "id")
    return {**render_customer(row),
            "addresses": render_addresses(addresses.values(*ADDRESS_FIELDS))}


def customer_detail(*, customer_id: uuid.UUID | str, fresh: bool = False) -> dict[str, Any] | None:
    """The rendered customer with its addresses (cache-aside, ``[cache.entities] customers`` TTL),
    or None. ``fresh`` reads the database (the answer to a write, before its commit)."""
    if fresh:
        return _load_detail(customer_id)
    return customer_cache.get_or_load(detail_key(customer_id), lambda: _load_detail(customer_id))


_customer_by_id: CompiledRead[Customer] = CompiledRead(
    lambda pk: Customer.objects.filter(pk=pk).order_by().defer("metadata")[:1])


def customer_get(*, customer_id: uuid.UUID | str) -> Customer | None:
    """The model instance (for other apps' services, e.g. orders), or None; without its
    ``metadata``. A read compiled once (``POST /orders`` makes it on every order)."""
    try:
        found = _customer_by_id(customer_id)
    except ValueError:  # not an id: names no customer
        return None
    return found[0] if found else None


def existing_customer_ids(*, customer_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    return list(Customer.objects.filter(pk__in=list(customer_ids)).values_list("pk", flat=True))


def customer_exists(*, customer_id: uuid.UUID | str) -> bool:
    return Customer.objects.filter(pk=customer_id).exists()


# --- addresses -----------------------------------------------------------------------------------


def address_list(*, customer_id: uuid.UUID | str, filters: dict[str, Any]) -> QuerySet[Address,
                                                                                       dict[str,
                                                                                            Any]]:
    rows = Address.objects.filter(customer_id=customer_id)
    if filters.get("kind"):
        rows = rows.filter(kind=filters["kind"])
    if filters.get("is_default") is not None:
        rows = rows.filter(is_default=filters["is_default"])
    values: QuerySet[Address, dict[str, Any]] = rows.values(*ADDRESS_FIELDS)
    return values


def address_detail(*, customer_id: uuid.UUID | str,
                   address_id: uuid.UUID | str) -> dict[str, Any] | None:
    """The rendered address if it is this customer's, else None."""
    row = Address.objects.filter(pk=address_id,
                                 customer_id=customer_id).values(*ADDRESS_FIELDS).first()
    return render_address(row) if row is not None else None


def address_default(*, customer_id: uuid.UUID | str, kind: str) -> Address | None:
    """The customer's default address of ``kind`` (shipping|billing), or None."""
    return Address.objects.filter(customer_id=customer_id, kind=kind, is_default=True).first()


def address_snapshot(address: Address) -> dict[str, Any]:
    """The JSON an order keeps of an address (no ids, no flags)."""
    return {field: getattr(address, field) for field in
            ("name", "line1", "line2", "city", "region", "postal_code", "country", "phone")}


# --- export (SPEC §4.8) ---------------------------------------------------------------------------

EXPORT_ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country",
                         "phone")
EXPORT_COLUMNS = ("email", "first_name", "last_name", "phone",
                  *(f"{kind}_{name}" for kind in ("shipping", "billing")
                    for name in EXPORT_ADDRESS_FIELDS))


def customer_export_rows(queryset: QuerySet[Any]) -> Iterator[tuple[Any, ...]]:
    """The customers of ``queryset`` (a filtered list) by email, each with its default shipping and
    billing address, as rows of :data:`EXPORT_COLUMNS` (the columns a customers import reads).
    Keyset chunks of customers, and one query for the default addresses of each chunk."""
    fields = ("id", "email", "first_name", "last_name", "phone")
    blank = ("",) * len(EXPORT_ADDRESS_FIELDS)
    for chunk in keyset_chunks(queryset, fields=fields, sort=Sort(field="email", descending=False)):
        defaults = {
            (row[0], row[1]): row[2:]
            for row in Address.objects.filter(customer_id__in=[r[0] for r in chunk],
                                              is_default=True)
            .values_list("customer_id", "kind", *EXPORT_ADDRESS_FIELDS)
        }
        for row in chunk:
            yield (*row[1:], *defaults.get((row[0], "shipping"), blank),
                   *defaults.get((row[0], "billing"), blank))
