"""Backorders (SPEC §4.3, §4.4.3): sell what is coming, allocate it first come first served, never
twice, never out of order; safety stock is never sold."""

import random
import threading
import time
import uuid

import pytest
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Product
from inventory import services as inventory_services
from inventory.models import Backorder, InventoryItem, Location, Reservation
from inventory.services import reconcile
from orders import services
from orders.models import Order, OrderItem
from orders.selectors import order_detail
from stateset.testing import client_for, data_of, error_of, run_threads
from webhooks.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def main(db):
    return Location.objects.get_or_create(code="MAIN", defaults={"name": "Main", "priority": 0})[0]


@pytest.fixture
def coming(main):
    """A product that may be sold before it arrives, with no stock yet."""
    return Product.objects.create(sku="PRE-1", name="Preorder", price="10.00", allow_backorder=True)


def order_for(customer, product, quantity):
    return services.order_create(customer_id=customer.id, items=[
        services.OrderLineInput(product_id=product.id, quantity=quantity)])


def waiting(order):
    return sum(Backorder.objects.filter(reference_id=order.id).values_list("quantity_waiting",
                                                                           flat=True))


def receive(product, location, quantity):
    return inventory_services.stock_receive(product_id=product.id, location_id=location.id,
                                            quantity=quantity, reason="delivery")


def assert_ledger_and_counters_agree():
    assert reconcile.inventory_reconcile() == []  # reserved = Σ active reservations
    assert reconcile.inventory_ledger_drift() == []  # counters = Σ movements


def test_a_short_backorderable_line_reserves_what_there_is_and_waits_for_the_rest(api, customer,
                                                                                  coming, main):
    receive(coming, main, 2)
    answer = data_of(api.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
        {"product_id": str(coming.id), "quantity": 5}]}, format="json"), 201)
    assert answer["backordered"] is True and answer["items"][0]["quantity_backordered"] == 3
    row = InventoryItem.objects.get(product=coming)
    assert (row.on_hand, row.reserved, row.sellable) == (2, 2, 0)
    queue = data_of(api.get("/api/v1/inventory/backorders"))["items"]
    assert [(q["order_number"], q["quantity_backordered"])
            for q in queue] == [(answer["order_number"], 3)]
    assert data_of(api.get("/api/v1/orders",
                           {"backordered": "true"}))["items"][0]["id"] == answer["id"]
    assert data_of(api.get("/api/v1/orders", {"backordered": "false"}))["items"] == []
    assert_ledger_and_counters_agree()


def test_a_product_that_does_not_allow_backorders_is_still_409(api, customer, main):
    plain = Product.objects.create(sku="PLAIN-1", name="Plain", price="10.00")
    receive(plain, main, 1)
    error = error_of(api.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
        {"product_id": str(plain.id), "quantity": 2}]}, format="json"), 409)
    assert error["code"] == "insufficient_stock" and not Order.objects.exists()


def test_an_inventory_row_may_allow_backorders_for_its_product(api, customer, main):
    product = Product.objects.create(sku="ROW-1", name="Row", price="10.00")
    row = receive(product, main, 1)
    patched = api.patch(f"/api/v1/inventory/{row.id}", {"allow_backorder": True}, format="json",
                        HTTP_IF_MATCH=f'"{row.version}"')
    assert data_of(patched)["allow_backorder"] is True
    answer = data_of(api.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
        {"product_id": str(product.id), "quantity": 3}]}, format="json"), 201)
    assert answer["items"][0]["quantity_backordered"] == 2


def test_a_product_patched_to_allow_backorders_backorders_its_short_lines(api, customer, main):
    product = data_of(api.post("/api/v1/products", {"sku": "LATE-1", "name": "Late",
                                                    "price": "10.00"}, format="json"), 201)
    assert product["allow_backorder"] is False
    receive(Product.objects.get(pk=product["id"]), main, 1)
    refused = error_of(api.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
        {"product_id": product["id"], "quantity": 3}]}, format="json"), 409)
    assert refused["code"] == "insufficient_stock"
    patched = data_of(api.patch(f"/api/v1/products/{product['id']}", {"allow_backorder": True},
                                format="json", HTTP_IF_MATCH=f'"{product["version"]}"'))
    assert patched["allow_backorder"] is True and patched["version"] == product["version"] + 1
    assert data_of(api.get(f"/api/v1/products/{product['id']}"))["allow_backorder"] is True
    answer = data_of(api.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
        {"product_id": product["id"], "quantity": 3}]}, format="json"), 201)
    assert answer["backordered"] is True and answer["items"][0]["quantity_backordered"] == 2


def test_an_inventory_row_takes_only_a_json_boolean_for_allow_backorder(api, main):
    row = receive(Product.objects.create(sku="ROW-2", name="Row", price="10.00"), main, 1)
    error = error_of(api.patch(f"/api/v1/inventory/{row.id}", {"allow_backorder": "yes"},
                               format="json", HTTP_IF_MATCH=f'"{row.version}"'), 422)
    assert "allow_backorder" in error["details"]
    fresh = InventoryItem.objects.get(pk=row.id)
    assert (fresh.version, fresh.allow_backorder) == (row.version, False)


def test_arrivals_go_to_the_oldest_orders_first(customer, coming, main):
    first, second, third = (order_for(customer, coming, n).order for n in (5, 3, 4))
    assert [waiting(o) for o in (first, second, third)] == [5, 3, 4]
    receive(coming, main, 6)
    # 5 to the first, 1 to the second
    assert [waiting(o) for o in (first, second, third)] == [0, 2, 4]
    receive(coming, main, 10)
    assert [waiting(o) for o in (first, second, third)] == [0, 0, 0]
    row = InventoryItem.objects.get(product=coming)
    assert (row.on_hand, row.reserved, row.sellable) == (16, 12, 4)  # 4 left over, sellable again
    allocated = Event.objects.filter(type="order.backorder_allocated").order_by("created_at")
    assert [(e.payload["order_number"], e.payload["quantity"]) for e in allocated] == [
        (first.order_number, 5), (second.order_number, 1), (second.order_number, 2),
        (third.order_number, 4)]
    detail = order_detail(second.id)
    assert detail["backordered"] is False and detail["items"][0]["quantity_backordered"] == 0
    assert [e["kind"] for e in detail["timeline"]].count("backorder_allocated") == 2
    assert_ledger_and_counters_agree()


def test_every_kind_of_growth_allocates(customer, coming, main):
    from datetime import timedelta

    from django.utils import timezone

    east = Location.objects.create(code="EAST", name="East", priority=5)
    receive(coming, main, 2)
    cart = inventory_services.stock_reserve(
        lines=[inventory_services.ReserveLine(product_id=coming.id, quantity=2)],
        reference_type="cart",
        reference_id="cart-1", expires_at=timezone.now() + timedelta(minutes=5))
    order = order_for(customer, coming, 7).order
    assert waiting(order) == 7
    receive(coming, east, 1)  # a delivery
    assert waiting(order) == 6
    inventory_services.stock_adjust(product_id=coming.id, location_id=east.id, delta=1,
                                    reason="found one")
    assert waiting(order) == 5
    inventory_services.stock_return(product_id=coming.id, location_id=east.id, quantity=1,
                                    reason="returned")
    assert waiting(order) == 4
    Reservation.objects.filter(id=cart[0].id).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    assert inventory_services.reservations_expire() == 1  # the cart's hold lapses
    assert waiting(order) == 2
    receive(coming, main, 5)  # 2 to the order, 3 left sellable
    assert waiting(order) == 0 and InventoryItem.objects.get(product=coming,
                                                             location=main).sellable == 3
    assert_ledger_and_counters_agree()


def test_a_new_inventory_row_with_an_opening_count_allocates(api, customer, coming, main):
    order = order_for(customer, coming, 3).order  # no inventory row at all yet
    assert waiting(order) == 3
    east = Location.objects.create(code="EAST", name="East", priority=5)
    row = data_of(api.post("/api/v1/inventory", {"product_id": str(coming.id),
                                                 "location_id": str(east.id), "on_hand": 5},
                           format="json"), 201)
    assert waiting(order) == 0
    assert (row["on_hand"], row["reserved"], row["sellable"]) == (5, 3, 2)
    assert data_of(api.get("/api/v1/inventory/backorders"))["items"] == []
    assert data_of(api.get(f"/api/v1/orders/{order.id}"))["backordered"] is False
    kinds = Event.objects.filter(type__in=["inventory.received", "order.backorder_allocated"])
    assert sorted(kinds.values_list("type", flat=True)) == [
        "inventory.received", "order.backorder_allocated"]
    assert_ledger_and_counters_agree()


def test_a_transfer_in_allocates(customer, coming, main):
    east = Location.objects.create(code="EAST", name="East", priority=5)
    row = receive(coming, main, 4)
    # nothing sellable
    inventory_services.inventory_item_update(item_id=row.id, changes={"safety_stock": 4})
    order = order_for(customer, coming, 2).order
    assert waiting(order) == 2
    inventory_services.stock_transfer(product_id=coming.id, from_location_id=main.id,
                                      to_location_id=east.id, quantity=2)
    assert waiting(order) == 0
    assert InventoryItem.objects.get(product=coming, location=east).reserved == 2
    assert_ledger_and_counters_agree()


def test_a_lowered_safety_stock_allocates(customer, coming, main):
    row = receive(coming, main, 5)
    row = inventory_services.inventory_item_update(item_id=row.id, changes={"safety_stock": 5})
    assert row.sellable == 0
    waiting_order = order_for(customer, coming, 3).order
    assert waiting(waiting_order) == 3  # safety stock is never sold
    inventory_services.inventory_item_update(item_id=row.id, changes={"safety_stock": 3})
    assert waiting(waiting_order) == 1
    assert InventoryItem.objects.get(id=row.id).sellable == 0
    assert_ledger_and_counters_agree()


def test_safety_stock_is_never_reserved_but_adjustments_and_shipments_may_use_it(api, customer,
                                                                                 main):
    product = Product.objects.create(sku="SAFE-1", name="Safe", price="10.00")
    row = receive(product, main, 10)
    inventory_services.inventory_item_update(item_id=row.id, changes={"safety_stock": 4})
    assert data_of(api.get(f"/api/v1/inventory/{row.id}"))["sellable"] == 6
    too_many = api.post("/api/v1/inventory/reserve",
                        {"items": [{"product_id": str(product.id), "quantity": 7}],
                                                      "reference_type": "cart",
                         "reference_id": "c-1"}, format="json")
    assert error_of(too_many, 409)["code"] == "insufficient_stock"
    data_of(api.post("/api/v1/inventory/reserve",
                     {"items": [{"product_id": str(product.id), "quantity": 6}],
                                                   "reference_type": "cart", "reference_id": "c-2"},
                     format="json"), 201)
    error_of(api.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
        {"product_id": str(product.id), "quantity": 1}]}, format="json"), 409)
    adjusted = inventory_services.stock_adjust(product_id=product.id, location_id=main.id, delta=-3,
                                               reason="damage")
    # into the safety stock
    assert (adjusted.on_hand, adjusted.reserved, adjusted.sellable) == (7, 6, 0)


def test_cancelling_leaves_the_queue_and_gives_the_next_order_its_units(customer, coming, main):
    from django.db import transaction

    from orders import locks, under_lock

    receive(coming, main, 3)
    first = order_for(customer, coming, 5).order  # 3 reserved, 2 waiting
    second = order_for(customer, coming, 4).order  # 4 waiting
    with transaction.atomic():  # the orders side of a cancellation (fulfillment adds its shipments)
        under_lock.order_move(order=locks.lock_order(first.id), to_status="cancelled",
                              reason="changed mind")
    assert waiting(first) == 0 and Backorder.objects.get(
        reference_id=first.id).status == "cancelled"
    assert waiting(second) == 1  # the 3 units the first held went to the second
    assert_ledger_and_counters_agree()


def test_shipments_take_allocated_units_only(api, customer, coming, main):
    receive(coming, main, 2)
    order = order_for(customer, coming, 5).order
    item = OrderItem.objects.get(order_id=order.id)
    over = api.post("/api/v1/shipments", {"order_id": str(order.id), "carrier": "UPS",
                                          "items": [{"order_item_id": str(item.id),
                                                     "quantity": 3}]}, format="json")
    assert error_of(over, 422)["code"] == "exceeds_allocated"
    shipment = data_of(api.post("/api/v1/shipments", {"order_id": str(order.id), "carrier": "UPS"},
                                format="json"), 201)
    assert [i["quantity"] for i in shipment["items"]] == [2]  # every allocated, unshipped unit


def test_extend_moves_an_expiring_reservation_only(api, main):
    product = Product.objects.create(sku="EXT-1", name="Ext", price="1.00")
    receive(product, main, 5)
    held = data_of(api.post("/api/v1/inventory/reserve",
                            {"items": [{"product_id": str(product.id), "quantity": 1}],
                                                          "reference_type": "cart",
                             "reference_id": "c",
                                                          "expires_in": 60}, format="json"),
                   201)["reservations"][0]
    extended = data_of(api.post(f"/api/v1/inventory/reservations/{held['id']}/extend",
                                {"expires_in": 3600}, format="json"))
    assert extended["expires_at"] > held["expires_at"]
    error_of(api.post(f"/api/v1/inventory/reservations/{held['id']}/extend", {"expires_in": "60"},
                      format="json"), 422)
    inventory_services.stock_release(reservation_ids=[held["id"]])
    gone = api.post(f"/api/v1/inventory/reservations/{held['id']}/extend", {"expires_in": 60},
                    format="json")
    assert error_of(gone, 409)["code"] == "reservation_not_active"


@pytest.mark.django_db(transaction=True)
def test_concurrent_arrivals_and_orders_never_allocate_twice_nor_out_of_order(customer, coming,
                                                                              main):
    from stateset import services as platform

    _, raw = platform.api_key_create(name="race", scopes=["*"])
    rng = random.Random(20261201)
    sizes = [rng.randint(1, 4) for _ in range(10)]

    def work(index):
        if index % 2 == 0:
            client = client_for(raw)
            return client.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
                {"product_id": str(coming.id), "quantity": sizes[index // 2]}]},
                               format="json").status_code
        return receive(coming, main, 2).on_hand

    results = run_threads(20, work)
    assert not [r for r in results if isinstance(r, BaseException)], results
    row = InventoryItem.objects.get(product=coming)
    assert row.on_hand == 20 and row.reserved <= row.on_hand
    orders = list(Order.objects.order_by("created_at", "id"))
    assert len(orders) == 10
    held = {o.id: sum(Reservation.objects.filter(reference_id=str(o.id), status="active")
                      .values_list("quantity", flat=True)) for o in orders}
    wait = {o.id: waiting(o) for o in orders}
    for order in orders:  # every unit is either held or waiting, never both, never lost
        assert held[order.id] + wait[order.id] == OrderItem.objects.get(order_id=order.id).quantity
    assert sum(held.values()) == row.reserved
    # First come, first served: once an order still waits, no later order holds arrived stock it
    # could have had (they only hold what was sellable when they were placed).
    still_waiting = [o for o in orders if wait[o.id]]
    if still_waiting:
        oldest = still_waiting[0]
        assert row.sellable == 0
        assert all(Reservation.objects.filter(reference_id=str(o.id),
                                              backorder__isnull=False).count() == 0
                   for o in orders if (o.created_at, o.id) > (oldest.created_at, oldest.id))
    assert_ledger_and_counters_agree()


def _backend_waits_on_advisory_lock(done: threading.Event, seconds: float = 15) -> bool:
    """True once another session of this database waits on an advisory lock; False if ``done``
    (the waiting side finished: it did not wait) or the time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not done.is_set():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND wait_event_type = 'Lock' "
                           "AND wait_event = 'advisory'")
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.02)
    return False


def _in_thread(work):
    """Start ``work`` in a thread; returns the thread, an event set when it ends and a list that
    then holds its result or exception."""
    done, results = threading.Event(), []

    def run():
        try:
            results.append(work())
        except BaseException as exc:  # reported by the test
            results.append(exc)
        finally:
            done.set()
            connection.close()
    thread = threading.Thread(target=run)
    thread.start()
    return thread, done, results


def _second_while_first_is_open(first, second):
    """Run ``first`` in a transaction a thread holds open; once it has run, start ``second`` in
    another thread, see whether it waits on an advisory lock, then let ``first`` commit. Returns
    (waited, first's result, second's result); an exception on either side fails the test."""
    opened, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            value = first()
            opened.set()
            assert release.wait(30)
        return value

    holding, _, held = _in_thread(hold)
    assert opened.wait(30), held
    waiting_side, done, results = _in_thread(second)
    try:
        waited = _backend_waits_on_advisory_lock(done)
    finally:
        release.set()
        holding.join(30)
        waiting_side.join(30)
    assert not [r for r in held + results if isinstance(r, BaseException)], held + results
    return waited, held[0], results[0]


@pytest.mark.django_db(transaction=True)
def test_an_order_placed_while_a_first_receipt_creates_the_row_waits_for_it(customer, coming,
                                                                            main):
    """The product has no inventory row. A first receipt creates one and is still open when an
    order comes: the order waits for it (it could not lock a row it cannot see yet), then takes
    the units instead of queueing behind stock nobody would serve it from."""
    waited, _, created = _second_while_first_is_open(
        lambda: inventory_services.stock_return_many(lines=[inventory_services.StockLine(
            location_id=main.id, quantity=2, product_id=coming.id)]),
        lambda: order_for(customer, coming, 2))
    assert waited, "the order did not wait for the new row"
    order = created.order
    assert waiting(order) == 0
    assert sum(Reservation.objects.filter(reference_id=str(order.id), status="active")
               .values_list("quantity", flat=True)) == 2
    assert InventoryItem.objects.get(product=coming).sellable == 0
    assert_ledger_and_counters_agree()


@pytest.mark.django_db(transaction=True)
def test_a_first_receipt_while_an_order_queues_waits_and_serves_it(coming, main):
    """The other way round: an order has queued its units (no row exists) and is still open when
    the product's first receipt creates a row; the receipt waits for the order and then serves
    its queue."""
    order_id, line_id = uuid.uuid4(), uuid.uuid4()
    waited, reserved, _ = _second_while_first_is_open(
        lambda: inventory_services.stock_reserve_for_order(
            lines=[inventory_services.ReserveLine(product_id=coming.id, quantity=2,
                                                  backorder_line_id=line_id)],
            queue=inventory_services.Queue(order_id=order_id, order_number="SO-RACE",
                                           queued_at=timezone.now())),
        lambda: receive(coming, main, 2))
    assert waited, "the receipt did not wait for the order"
    assert reserved.backordered == {line_id: 2}
    assert Backorder.objects.get(line_id=line_id).quantity_waiting == 0
    assert sum(Reservation.objects.filter(reference_id=str(order_id), status="active")
               .values_list("quantity", flat=True)) == 2
    assert InventoryItem.objects.get(product=coming).sellable == 0
    assert_ledger_and_counters_agree()


def test_reconcile_finds_and_serves_a_queue_stranded_beside_sellable_stock(customer, coming, main):
    """A queue that waits while sellable stock sits beside it (left by the race fixed above, before
    this release) is reported by ``reconcile_inventory`` and served by ``--fix``, oldest first."""
    from io import StringIO

    from django.core.management import call_command

    first, second = order_for(customer, coming, 2).order, order_for(customer, coming, 2).order
    assert waiting(first) == waiting(second) == 2
    # Stock that arrived without serving the queue, as the race left it (the ledger agrees).
    receive(coming, main, 3)
    Reservation.objects.filter(reference_id__in=[str(first.id), str(second.id)]).delete()
    Backorder.objects.filter(product=coming).update(quantity_waiting=2, status="waiting")
    InventoryItem.objects.filter(product=coming).update(reserved=0)
    from inventory.models import StockMovement
    StockMovement.objects.filter(inventory_item__product=coming, kind="reserve").delete()

    [stranded] = inventory_services.backorders_stranded()
    assert (stranded.sku, stranded.waiting, stranded.sellable) == ("PRE-1", 4, 3)
    assert type(stranded.waiting) is type(stranded.sellable) is int
    out = StringIO()
    call_command("reconcile_inventory", stdout=out)
    assert "stranded backorders: PRE-1" in out.getvalue() and waiting(first) == 2  # report only
    from inventory import tasks
    assert tasks.inventory_reconcile_report()["stranded_backorders"] == 1  # the nightly report
    assert waiting(first) == 2
    call_command("reconcile_inventory", "--fix", stdout=out)
    assert "3 allocated" in out.getvalue()
    assert (waiting(first), waiting(second)) == (0, 1)  # the oldest order first
    assert InventoryItem.objects.get(product=coming).sellable == 0
    assert inventory_services.backorders_stranded() == []
    assert_ledger_and_counters_agree()


@pytest.mark.django_db(transaction=True)
def test_reactivating_a_location_serves_the_orders_waiting_for_its_stock(api, customer, coming,
                                                                         main):
    """Stock at an inactive location is not sellable; when the location is active again (PATCH
    /locations/{id}), the orders waiting for it are served from it, oldest first."""
    spare = Location.objects.create(code="SPARE", name="Spare", priority=5)
    receive(coming, spare, 3)
    data_of(api.patch(f"/api/v1/locations/{spare.id}", {"is_active": False}, format="json"))
    first, second = order_for(customer, coming, 2).order, order_for(customer, coming, 2).order
    assert waiting(first) == waiting(second) == 2  # the spare location's units are not sellable
    data_of(api.patch(f"/api/v1/locations/{spare.id}", {"is_active": True}, format="json"))
    assert (waiting(first), waiting(second)) == (0, 1)
    row = InventoryItem.objects.get(product=coming, location=spare)
    assert row.reserved == 3 and row.sellable == 0
    assert inventory_services.backorders_stranded() == []
    assert_ledger_and_counters_agree()
