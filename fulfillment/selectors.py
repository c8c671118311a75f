"""Every read of shipments the API, the admin and the order detail need, with a fixed number of
queries: a page or a detail is the shipments in one query and their items in one more."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from fulfillment.models import Shipment, ShipmentItem
from stateset.errors import NotFound

SHIPMENT_FIELDS = ("id", "order_id", "location_id", "carrier", "service", "tracking_number",
                   "status", "shipped_at", "delivered_at", "version", "created_at", "updated_at")
ITEM_FIELDS = ("id", "shipment_id", "order_item_id", "quantity")
SORT_FIELDS = {"created_at": "created_at"}


def shipment_filter(*, order_id: uuid.UUID | None = None, status: str | None = None,
                    carrier: str | None = None,
                    location_id: uuid.UUID | None = None) -> QuerySet[Shipment]:
    """Shipments matching the list filters; each filter leads an index with ``created_at``."""
    queryset = Shipment.objects.all()
    if order_id:
        queryset = queryset.filter(order_id=order_id)
    if status:
        queryset = queryset.filter(status=status)
    if carrier:
        queryset = queryset.filter(carrier=carrier)
    if location_id:
        queryset = queryset.filter(location_id=location_id)
    return queryset


def shipment_rows(queryset: QuerySet[Shipment]) -> QuerySet[Shipment, dict[str, Any]]:
    values: QuerySet[Shipment, dict[str, Any]] = queryset.values(*SHIPMENT_FIELDS)
    return values


def _item_rows(shipment_ids: list[uuid.UUID]) -> Iterable[dict[str, Any]]:
    rows: Iterable[dict[str, Any]] = (
        ShipmentItem.objects.filter(shipment_id__in=shipment_ids)
        .order_by("shipment_id", "order_item__sku", "id")
        .values(*ITEM_FIELDS, "order_item__sku", "order_item__name", "order_item__product_id"))
    return rows


def render_item(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "order_item_id": row["order_item_id"],
            "product_id": row["order_item__product_id"],
            "sku": row["order_item__sku"], "name": row["order_item__name"],
            "quantity": row["quantity"]}


def items_by_shipment(shipment_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Items of several shipments in one query (the order item's SKU and name joined in)."""
    grouped: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in _item_rows(list(shipment_ids)):
        grouped[row["shipment_id"]].append(render_item(row))
    return grouped


def render_shipments(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shipment rows (``SHIPMENT_FIELDS``) with their items, in one query for the whole page."""
    shipments = [dict(row) for row in rows]
    if shipments:
        grouped = items_by_shipment(row["id"] for row in shipments)
        for row in shipments:
            row["items"] = grouped.get(row["id"], [])
    return shipments


def shipment_detail(shipment_id: uuid.UUID) -> dict[str, Any]:
    """One shipment with its items: two queries."""
    row = Shipment.objects.filter(id=shipment_id).values(*SHIPMENT_FIELDS).first()
    if row is None:
        raise NotFound("No such shipment.", code="shipment_not_found")
    return render_shipments([row])[0]


def shipment_by_tracking(tracking_number: str) -> dict[str, Any]:
    """The shipment with this tracking number (the partial unique index answers)."""
    row = Shipment.objects.filter(tracking_number=tracking_number.strip()).values(
        *SHIPMENT_FIELDS).first()
    if row is None:
        raise NotFound("No shipment has this tracking number.", code="shipment_not_found")
    return render_shipments([row])[0]


def shipments_of_order(order_id: uuid.UUID) -> list[dict[str, Any]]:
    """An order's shipments, oldest first, each with its items — one query (every shipment has at
    least one item), for the order detail."""
    shipments: dict[uuid.UUID, dict[str, Any]] = {}
    rows = (ShipmentItem.objects.filter(shipment__order_id=order_id)
            .order_by("shipment__created_at", "shipment_id", "order_item__sku", "id")
            .values(*ITEM_FIELDS, "order_item__sku", "order_item__name", "order_item__product_id",
                    *(f"shipment__{name}" for name in SHIPMENT_FIELDS)))
    for row in rows:
        shipment = shipments.get(row["shipment_id"])
        if shipment is None:
            shipment = {name: row[f"shipment__{name}"] for name in SHIPMENT_FIELDS}
            shipment["items"] = []
            shipments[row["shipment_id"]] = shipment
        shipment["items"].append(render_item(row))
    return list(shipments.values())


def open_units(order_page: dict[str, Any]) -> dict[uuid.UUID, int]:
    """Per line of an order's page (``orders.selectors.order_page``), the units a new shipment may
    take: ordered, not shipped, not in a pending shipment, not waiting for stock. No query."""
    claimed: dict[uuid.UUID, int] = defaultdict(int)
    for shipment in order_page.get("shipments", []):
        if shipment["status"] == Shipment.Status.PENDING:
            for line in shipment["items"]:
                claimed[line["order_item_id"]] += line["quantity"]
    return {item["id"]: max(item["quantity"] - item["quantity_fulfilled"] - claimed[item["id"]]
                            - item["quantity_backordered"], 0)
            for item in order_page["items"]}


def shipment_page(shipment_id: uuid.UUID | str) -> Shipment | None:
    """A shipment's back-office page: the shipment with its order and location (one query)."""
    try:
        shipment_id = uuid.UUID(str(shipment_id))
    except ValueError:
        return None
    return (Shipment.objects.select_related("order", "location").filter(id=shipment_id)
            .first())
