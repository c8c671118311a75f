"""Every row lock of the fulfillment app (STYLE.md "Locks in one place per app"): a shipment is
locked after its order (``orders.locks.lock_order``), so every write to an order's shipments runs
one after the other (global order: ``stateset/locking.py``)."""

from __future__ import annotations

import uuid

from fulfillment.models import Shipment
from orders.locks import lock_order
from orders.models import Order
from stateset.errors import NotFound
from stateset.locking import Rank, acquired


def lock_shipment(shipment_id: uuid.UUID) -> tuple[Order, Shipment]:
    """The shipment's order, then the shipment, both locked. Raises NotFound
    (``shipment_not_found``)."""
    order_id = Shipment.objects.filter(id=shipment_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFound("No such shipment.", code="shipment_not_found")
    order = lock_order(order_id)
    # shipments are never deleted
    shipment = Shipment.objects.select_for_update().get(id=shipment_id)
    acquired(Rank.SHIPMENT_RETURN, [shipment.id])
    return order, shipment


def lock_pending_shipments(order: Order) -> list[Shipment]:
    """The pending shipments of a locked order, in primary-key order."""
    rows = list(Shipment.objects.select_for_update()
                .filter(order_id=order.id, status=Shipment.Status.PENDING).order_by("id"))
    acquired(Rank.SHIPMENT_RETURN, [s.id for s in rows])
    return rows
