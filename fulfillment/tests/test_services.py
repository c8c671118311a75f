"""Shipments move orders, order items and stock together (SPEC §4.4, §4.5)."""

import datetime as dt
import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from fulfillment import services
from fulfillment.models import Shipment, ShipmentItem
from inventory import services as inventory_services
from inventory.models import InventoryItem, Reservation, StockMovement
from orders.models import Order, OrderEvent, OrderItem
from orders.tests.factories import receive
from stateset.errors import Conflict, InvalidTransition, ValidationFailed

pytestmark = pytest.mark.django_db


def line(order, product):
    return OrderItem.objects.get(order_id=order.id, product_id=product.id)


def stock(product, location=None):
    query = InventoryItem.objects.filter(product_id=product.id)
    if location is not None:
        query = query.filter(location_id=location.id)
    row = query.get()
    return row.on_hand, row.reserved


def kinds(order):
    return list(OrderEvent.objects.filter(order_id=order.id).order_by("created_at",
                                                                      "id").values_list("kind",
                                                                                        flat=True))


def snapshot(order):
    order = Order.objects.get(id=order.id)
    return {
        "shipments": Shipment.objects.count(),
        "shipment_items": ShipmentItem.objects.count(),
        "events": OrderEvent.objects.filter(order_id=order.id).count(),
        "order": (order.status, order.fulfillment_status, order.version),
        "fulfilled": sorted(
            OrderItem.objects.filter(order_id=order.id).values_list("quantity_fulfilled",
                                                                    flat=True)),
        "stock": sorted(InventoryItem.objects.values_list("id", "on_hand", "reserved")),
        "movements": StockMovement.objects.count(),
        "reservations": sorted(Reservation.objects.values_list("id", "status",
                                                               "quantity_fulfilled")),
    }


def test_partial_then_final_shipment_moves_statuses_quantities_and_stock(make_product,
                                                                         make_multi_order, main):
    widget, gadget = make_product(stock=10), make_product(stock=5)
    order = make_multi_order((widget, 3), (gadget, 2))
    assert stock(widget) == (10, 3) and stock(gadget) == (5, 2)

    first = services.shipment_create(order_id=order.id, carrier="ups", items=[
        services.ShipmentLineInput(order_item_id=line(order, widget).id, quantity=2)]).shipment
    order.refresh_from_db()
    assert (first.status, first.location_id) == ("pending", main.id)
    assert (order.status, order.fulfillment_status) == ("processing", "unfulfilled")
    assert kinds(order)[-2:] == ["shipment_created", "status_changed"]
    assert stock(widget) == (10, 3)  # creating a shipment moves no stock

    services.shipment_ship(shipment_id=first.id)
    order.refresh_from_db()
    assert (order.status, order.fulfillment_status) == ("processing", "partially_fulfilled")
    assert line(order, widget).quantity_fulfilled == 2 and line(order,
                                                                gadget).quantity_fulfilled == 0
    # on_hand and reserved drop by exactly 2
    assert stock(widget) == (8, 1) and stock(gadget) == (5, 2)
    [moved] = StockMovement.objects.filter(kind="ship", reference_id=str(first.id))
    assert (moved.on_hand_delta, moved.reserved_delta, moved.on_hand_after,
            moved.reserved_after) == (-2, -2, 8, 1)
    assert Shipment.objects.get(id=first.id).shipped_at is not None

    # default: everything open
    second = services.shipment_create(order_id=order.id, carrier="ups").shipment
    assert sorted(ShipmentItem.objects.filter(shipment=second).values_list("quantity",
                                                                           flat=True)) == [1, 2]
    services.shipment_ship(shipment_id=second.id)
    order.refresh_from_db()
    assert (order.status, order.fulfillment_status) == ("shipped", "fulfilled")
    assert line(order, widget).quantity_fulfilled == 3 and line(order,
                                                                gadget).quantity_fulfilled == 2
    assert stock(widget) == (7, 0) and stock(gadget) == (3, 0)
    ships = StockMovement.objects.filter(kind="ship", reference_type="shipment")
    assert sum(m.on_hand_delta for m in ships) == -5 and sum(m.reserved_delta for m in ships) == -5
    assert inventory_services.inventory_ledger_drift() == []  # the ledger still sums to every row
    assert set(Reservation.objects.filter(reference_id=str(order.id)).values_list("status",
                                                                                  flat=True)) == {
                                                                                      "fulfilled"}
    assert kinds(order).count("shipped") == 2 and kinds(order)[-1] == "status_changed"

    services.shipment_deliver(shipment_id=first.id)
    order.refresh_from_db()
    assert order.status == "shipped"  # the second shipment is still on its way
    services.shipment_deliver(shipment_id=second.id)
    order.refresh_from_db()
    assert order.status == "delivered" and kinds(order)[-2:] == ["delivered", "status_changed"]


def test_over_allocation_is_422_and_writes_nothing(make_product, make_order, ship_order):
    widget = make_product(stock=10)
    order = make_order(quantity=3, product=widget)
    item = line(order, widget)
    services.shipment_create(order_id=order.id, carrier="ups", items=[
        services.ShipmentLineInput(order_item_id=item.id, quantity=2)])
    before = snapshot(order)
    with pytest.raises(ValidationFailed) as caught:
        services.shipment_create(order_id=order.id, carrier="ups", items=[
            services.ShipmentLineInput(order_item_id=item.id, quantity=2)])
    assert caught.value.code == "exceeds_unfulfilled"
    details = caught.value.details["items"]["0"]
    assert (details["requested"], details["in_pending_shipments"], details["available"]) == (2, 2,
                                                                                             1)
    assert snapshot(order) == before


def test_nothing_left_to_allocate_is_409(make_order, ship_order):
    order = make_order(quantity=2)
    ship_order(order)
    with pytest.raises(InvalidTransition) as caught:
        ship_order(order)
    assert caught.value.code == "nothing_to_ship"


def test_a_cancelled_shipment_gives_its_units_back_and_only_pending_ones_cancel(make_order,
                                                                                ship_order):
    order = make_order(quantity=2)
    shipment = ship_order(order)
    services.shipment_cancel(shipment_id=shipment.id, reason="wrong box")
    assert Shipment.objects.get(id=shipment.id).status == "cancelled"
    assert "Shipment" in OrderEvent.objects.filter(order_id=order.id, kind="note").get().message
    with pytest.raises(InvalidTransition):
        services.shipment_cancel(shipment_id=shipment.id)
    again = ship_order(order)  # the two units are open again
    services.shipment_ship(shipment_id=again.id)
    with pytest.raises(InvalidTransition) as caught:
        services.shipment_cancel(shipment_id=again.id)
    assert caught.value.details["from"] == "shipped"
    with pytest.raises(InvalidTransition):
        services.shipment_deliver(shipment_id=shipment.id)  # a cancelled one is never delivered


def test_delivering_a_pending_shipment_is_409(make_order, ship_order):
    shipment = ship_order(make_order())
    with pytest.raises(InvalidTransition):
        services.shipment_deliver(shipment_id=shipment.id)
    assert Shipment.objects.get(id=shipment.id).delivered_at is None


@pytest.mark.parametrize("status, code, ship_code, shipment_status", [
    ("on_hold", "order_on_hold", "order_on_hold", "pending"),
    # cancelling the order cancelled its pending shipment, so shipping it is the shipment's own 409
    ("cancelled", "order_cancelled", "invalid_transition", "cancelled"),
])
def test_on_hold_and_cancelled_orders_cannot_ship(make_product, make_order, ship_order, status,
                                                  code, ship_code, shipment_status):
    widget = make_product(stock=5)
    order = make_order(quantity=2, product=widget)
    shipment = ship_order(order)  # the order is now processing
    services.order_set_status(order_id=order.id, to_status=status)
    before = snapshot(order)
    with pytest.raises(InvalidTransition) as caught:
        services.shipment_ship(shipment_id=shipment.id)
    assert caught.value.code == ship_code
    with pytest.raises(InvalidTransition) as caught:
        services.shipment_create(order_id=order.id, carrier="ups", items=[
            services.ShipmentLineInput(order_item_id=line(order, widget).id, quantity=1)])
    assert caught.value.code == code
    assert snapshot(order) == before
    assert Shipment.objects.get(id=shipment.id).status == shipment_status


def test_location_defaults_to_where_the_units_are_reserved_and_is_asked_for_when_split(
        make_product, make_order, main, east):
    widget = make_product(stock=0)
    receive(widget, 2, "MAIN", 0)
    receive(widget, 3, "EAST", 10)
    # reserved: 2 at MAIN (first by priority), 2 at EAST
    order = make_order(quantity=4, product=widget)
    before = snapshot(order)
    item = line(order, widget)
    with pytest.raises(ValidationFailed) as caught:  # explicit items: which location?
        services.shipment_create(order_id=order.id, carrier="ups", items=[
            services.ShipmentLineInput(order_item_id=item.id, quantity=3)])
    assert caught.value.code == "location_required"
    where = {entry["code"]: entry["items"][0]["reserved"]
             for entry in caught.value.details["locations"]}
    assert where == {"MAIN": 2, "EAST": 2}
    with pytest.raises(ValidationFailed) as caught:
        services.shipment_create(order_id=order.id, carrier="ups", location_id=main.id, items=[
            services.ShipmentLineInput(order_item_id=item.id, quantity=3)])
    assert caught.value.code == "not_reserved_at_location"
    assert snapshot(order) == before

    # Default items, reserved at two locations: the one holding the most (a tie: by code, EAST),
    # cut to what it holds; the rest comes from the other.
    from_east = services.shipment_create(order_id=order.id, carrier="ups")
    assert from_east.shipment.location_id == east.id
    assert [i.quantity for i in from_east.items] == [2]
    rest = services.shipment_create(order_id=order.id, carrier="dhl").shipment
    assert rest.location_id == main.id  # the only place left holding the order's units
    for shipment in (from_east.shipment, rest):
        services.shipment_ship(shipment_id=shipment.id)
    assert stock(widget, main) == (0, 0) and stock(widget, east) == (1, 0)
    assert Order.objects.get(id=order.id).status == "shipped"


def test_a_released_reservation_cannot_ship(make_product, make_order, ship_order):
    order = make_order(quantity=2)
    shipment = ship_order(order)
    with pytest.raises(Conflict):  # nobody but the order's own cancel releases them
        inventory_services.stock_release(reference_type="order", reference_id=str(order.id))
    # ... which leaves its shipments cancelled; should the units still go, shipping is refused.
    inventory_services.stock_release(reference_type="order", reference_id=str(order.id),
                                     order_cancelled=True)
    with pytest.raises(InvalidTransition) as caught:
        services.shipment_ship(shipment_id=shipment.id)
    assert caught.value.code == "not_reserved"
    assert OrderItem.objects.get(order_id=order.id).quantity_fulfilled == 0


def test_tracking_numbers_are_unique_when_set(make_order, ship_order):
    ship_order(make_order(), tracking_number="1Z999")
    ship_order(make_order())
    ship_order(make_order(), tracking_number="")  # unset twice is fine (NULL)
    assert Shipment.objects.filter(tracking_number__isnull=True).count() == 2
    with pytest.raises(Conflict) as caught:
        ship_order(make_order(), tracking_number="1Z999")
    assert caught.value.code == "tracking_number_taken"
    with pytest.raises(IntegrityError), transaction.atomic():
        Shipment.objects.filter(tracking_number__isnull=True).update(tracking_number="1Z999")


def test_an_orphan_shipment_is_rejected_by_the_database(make_order, main):
    order = make_order()
    for order_id, created_at in ((uuid.uuid4(), order.created_at),
                                 (order.id, order.created_at - dt.timedelta(days=40))):
        with pytest.raises(IntegrityError), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            Shipment.objects.create(order_id=order_id, order_created_at=created_at, location=main,
                                    carrier="ups")
    Shipment.objects.create(order_id=order.id, order_created_at=order.created_at, location=main,
                            carrier="ups")


def test_the_database_rejects_bad_quantities_and_states(make_order, ship_order):
    shipment = ship_order(make_order())
    item = ShipmentItem.objects.get(shipment=shipment)
    for bad in (lambda: ShipmentItem.objects.filter(id=item.id).update(quantity=0),
                # no shipped_at
                lambda: Shipment.objects.filter(id=shipment.id).update(status="shipped"),
                lambda: Shipment.objects.filter(id=shipment.id).update(status="lost")):
        with pytest.raises(IntegrityError), transaction.atomic():
            bad()


def test_cancelling_the_order_cancels_its_pending_shipments(make_order):
    from orders.models import OrderEvent

    order = make_order()
    pending = services.shipment_create(order_id=order.id, carrier="ups").shipment
    services.order_cancel(order_id=order.id, reason="customer asked")
    pending.refresh_from_db()
    assert (pending.status, pending.version) == ("cancelled", 2)
    note = OrderEvent.objects.get(order_id=order.id, kind="note")
    assert note.message == "1 pending shipment(s) cancelled with the order."
    assert note.data == {"shipment_id": str(pending.id)}
