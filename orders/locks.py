"""Every row lock of the orders app (STYLE.md "Locks in one place per app").

The order row is the first lock of every write to an order or to its children (shipments, returns,
payments): holding it serialises those writes, so allocation cannot be over-counted and a shipment
cannot ship twice. Order items come after shipments and returns, before stock
(``stateset/locking.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from orders.models import Order
from stateset.errors import NotFound, ValidationFailed
from stateset.locking import Rank, acquired


def lock_order(order_id: uuid.UUID, *, named_in_body: bool = False) -> Order:
    """``SELECT ... FOR UPDATE`` of the order row in the caller's transaction. Raises NotFound
    (``order_not_found``), or with ``named_in_body`` (a new shipment or return names its order in
    the request body) ValidationFailed ``order_not_found`` on the ``order_id`` field."""
    order = Order.objects.select_for_update().filter(id=order_id).first()
    if order is None:
        if named_in_body:
            raise ValidationFailed("No such order.", code="order_not_found",
                                   details={"order_id": ["No such order."]})
        raise NotFound("No such order.", code="order_not_found")
    acquired(Rank.ORDER, [order.id])
    return order


def items_locked_by_update(item_ids: Iterable[uuid.UUID]) -> None:
    """Report the row locks the guarded counter UPDATEs of order items take (in primary-key order),
    so they are checked against the global order like explicit locks."""
    acquired(Rank.ORDER_ITEM, sorted(item_ids))
