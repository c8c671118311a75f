"""Every row lock of the returns app (STYLE.md "Locks in one place per app"): a return is locked
after its order (``orders.locks.lock_order``), so every write to an order's returns runs one after
the other (global order: ``stateset/locking.py``)."""

from __future__ import annotations

import uuid

from orders.locks import lock_order
from orders.models import Order
from returns.models import Return
from stateset.errors import NotFound
from stateset.locking import Rank, acquired


def lock_return(return_id: uuid.UUID) -> tuple[Order, Return]:
    """The return's order, then the return, both locked. Raises NotFound (``return_not_found``)."""
    order_id = Return.objects.filter(id=return_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFound("No such return.", code="return_not_found")
    order = lock_order(order_id)
    rma = Return.objects.select_for_update().get(id=return_id)  # returns are never deleted
    acquired(Rank.SHIPMENT_RETURN, [rma.id])
    return order, rma
