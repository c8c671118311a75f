"""Every read of returns the API, the admin and the orders app need, with a fixed number of
queries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from returns.models import Return, ReturnItem
from stateset.errors import NotFound
from stateset.money import money_str
from stateset.pagination import bounded_counts

RETURN_FIELDS = ("id", "rma_number", "order_id", "status", "reason", "refund_amount", "currency",
                 "notes", "version", "created_at", "updated_at")
ITEM_FIELDS = ("id", "rma_id", "order_item_id", "order_item__sku", "order_item__product_id",
               "order_item__unit_price", "quantity", "condition", "restock", "location_id",
               "refund_amount", "rma__currency")
SORT_FIELDS = {"created_at": "created_at", "rma_number": "rma_number"}


def render_item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "order_item_id": row["order_item_id"],
        "sku": row["order_item__sku"],
        "product_id": row["order_item__product_id"],
        "unit_price": money_str(row["order_item__unit_price"], row["rma__currency"]),
        "quantity": row["quantity"],
        "condition": row["condition"],
        "restock": row["restock"],
        "location_id": row["location_id"],
        "refund_amount": money_str(row["refund_amount"], row["rma__currency"]),
    }


def render_return(row: dict[str, Any], items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    data = {name: row[name] for name in RETURN_FIELDS}
    data["refund_amount"] = money_str(row["refund_amount"], row["currency"])
    data["items"] = list(items)
    return data


def return_filter(*, order_id: uuid.UUID | None = None,
                  status: str | None = None) -> QuerySet[Return]:
    """Returns matching the list filters; each filter leads an index with ``created_at``."""
    queryset = Return.objects.all()
    if order_id:
        queryset = queryset.filter(order_id=order_id)
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def return_rows(queryset: QuerySet[Return]) -> QuerySet[Return, dict[str, Any]]:
    values: QuerySet[Return, dict[str, Any]] = queryset.values(*RETURN_FIELDS)
    return values


def items_by_return(return_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Items of several returns in one query (joined to their order items for SKU and price)."""
    grouped: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    rows = ReturnItem.objects.filter(rma_id__in=list(return_ids)).order_by("rma_id",
                                                                           "id").values(
                                                                               *ITEM_FIELDS)
    for row in rows:
        grouped[row["rma_id"]].append(render_item(row))
    return grouped


def render_page(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A list page with every return's items: one query for the whole page."""
    rows = list(rows)
    grouped = items_by_return(row["id"] for row in rows) if rows else {}
    return [render_return(row, grouped.get(row["id"], [])) for row in rows]


def return_detail(return_id: uuid.UUID) -> dict[str, Any]:
    """One return with its items: two queries."""
    row = Return.objects.filter(id=return_id).values(*RETURN_FIELDS).first()
    if row is None:
        raise NotFound("No such return.", code="return_not_found")
    return render_return(row, items_by_return([return_id]).get(return_id, []))


# Returns whose units still count against what may be returned (rejected and cancelled ones gave
# theirs back): ``returns.services.HOLDING``.
_GAVE_BACK = (Return.Status.REJECTED, Return.Status.CANCELLED)


def returnable_units(order_page: dict[str, Any]) -> dict[uuid.UUID, int]:
    """Per line of an order's page (``orders.selectors.order_page``), the units a new return may
    ask for: shipped and not in a live return. No query."""
    held: dict[uuid.UUID, int] = defaultdict(int)
    for rma in order_page.get("returns", []):
        if rma["status"] not in _GAVE_BACK:
            for line in rma["items"]:
                held[line["order_item_id"]] += line["quantity"]
    return {item["id"]: max(item["quantity_fulfilled"] - held[item["id"]], 0)
            for item in order_page["items"]}


def return_page(return_id: uuid.UUID | str) -> dict[str, Any] | None:
    """A return's back-office page: ``{"id", "rma"`` (with its order) ``, "items"`` (with their
    order lines and locations)``}`` — two queries; None for no such return."""
    try:
        return_id = uuid.UUID(str(return_id))
    except ValueError:
        return None
    rma = Return.objects.select_related("order").filter(id=return_id).first()
    if rma is None:
        return None
    items = list(ReturnItem.objects.filter(rma_id=rma.id).select_related("order_item", "location")
                 .order_by("order_item__sku", "condition", "id"))
    return {"id": rma.id, "rma": rma, "items": items}

def returns_for_order(order_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every return of one order with its items, oldest first, in ONE query (items joined to their
    return; a return always has items). For the order detail."""
    rows = (ReturnItem.objects.filter(rma__order_id=order_id)
            .order_by("rma__created_at", "rma_id", "id")
            .values(*ITEM_FIELDS,
                    *(f"rma__{name}" for name in RETURN_FIELDS if name != "currency")))
    returns: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:
        rma_id = row["rma_id"]
        if rma_id not in returns:
            returns[rma_id] = render_return({name: row[f"rma__{name}"] for name in RETURN_FIELDS},
                                            [])
        returns[rma_id]["items"].append(render_item(row))
    return list(returns.values())


# --- the back office's dashboard (SPEC §5) --------------------------------------------------------

AWAITING_ACTION = (Return.Status.REQUESTED, Return.Status.APPROVED, Return.Status.RECEIVED)


def returns_awaiting(*, cap: int) -> dict[str, int]:
    """Returns waiting for staff, per status (to approve, to receive, to refund), each exact up to
    ``cap``: one statement over the ``(status, created_at)`` index."""
    return bounded_counts({status: Return.objects.filter(status=status)
                           for status in AWAITING_ACTION}, cap=cap)
