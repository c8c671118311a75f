"""The global lock order (stateset/locking.py) on the paths that lock the most: each service's
row locks are recorded and must come in rank order, by primary key within a rank. (Every test of
the suite also runs under the strict recorder of the root conftest.)"""

import pytest
from django.db import transaction

from fulfillment import services
from stateset.locking import Rank, recording

pytestmark = pytest.mark.django_db

R = Rank


def test_shipping_locks_order_shipment_items_reservations_then_stock(make_product, make_multi_order,
                                                                     ship_order):
    first, second = make_product(stock=5), make_product(stock=5)
    order = make_multi_order((first, 2), (second, 1))
    shipment = ship_order(order)
    with recording() as recorder:
        services.shipment_ship(shipment_id=shipment.id)
    assert recorder.ranks == [[R.ORDER, R.SHIPMENT_RETURN, R.ORDER_ITEM, R.RESERVATION,
                               R.INVENTORY_ITEM]]


def test_cancelling_locks_order_pending_shipments_reservations_then_stock(make_product, make_order,
                                                                          ship_order):
    order = make_order(quantity=2, product=make_product(stock=5))
    ship_order(order)
    with recording() as recorder:
        services.order_cancel(order_id=order.id, reason="customer asked")
    # The released units go to orders waiting for them: the product's backorder queue comes last.
    assert recorder.ranks == [[R.ORDER, R.SHIPMENT_RETURN, R.RESERVATION, R.INVENTORY_ITEM,
                               R.BACKORDER]]


def test_a_path_that_locks_stock_before_its_shipment_is_refused(make_product, make_order,
                                                                ship_order):
    """What the recorder exists for: taking the inventory row before the shipment (the order a
    careless refactoring of ``order_cancel`` would produce) fails at once, in any test."""
    from fulfillment import locks
    from inventory import locks as inventory_locks
    from inventory.models import InventoryItem
    from orders import locks as order_locks
    from stateset.locking import LockOrderViolation

    order = make_order(quantity=1, product=make_product(stock=5))
    ship_order(order)
    item = InventoryItem.objects.get(product_id=order.items.get().product_id)
    with recording(), pytest.raises(LockOrderViolation), transaction.atomic(durable=True):
        locked = order_locks.lock_order(order.id)
        inventory_locks.lock_items([item.id])
        locks.lock_pending_shipments(locked)
