"""The back office: changelists at fixed query counts, actions through the services, a read-only
ledger."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory import services
from inventory.models import InventoryItem, Location, Reservation, StockMovement
from inventory.services import ReserveLine
from inventory.tests.factories import (
    LocationFactory,
    ProductFactory,
    assert_ledger_matches_counters,
    stock,
)

pytestmark = pytest.mark.django_db
ADMIN = "/admin/inventory"


def _fill(count: int, location: Location) -> None:
    for product in ProductFactory.create_batch(count):
        stock(product, location, 5)
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                               reference_type="cart", reference_id=str(product.id))
    InventoryItem.objects.update(reorder_point=10)


def _changelist_queries(admin_client, url: str) -> int:
    admin_client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(queries)


# session + user + the bounded count + the page (+ the location filter's choices): never per row.
CHANGELISTS = [
    ("inventoryitem/", 5), ("inventoryitem/?stock=low", 5), ("inventoryitem/?q=INV-00001", 5),
    ("reservation/", 4), ("reservation/?status=active", 4), ("stockmovement/", 4),
    ("stockmovement/?kind=reserve", 4), ("stockmovement/?q=PO-1", 4), ("reservation/?q=cart-1", 4),
    ("location/", 4),
]


@pytest.mark.parametrize(("path", "expected"), CHANGELISTS)
def test_changelists_run_a_fixed_number_of_queries(admin_client, path, expected):
    main = LocationFactory(code="MAIN", priority=0)
    _fill(1, main)
    one = _changelist_queries(admin_client, f"{ADMIN}/{path}")
    _fill(49, main)
    LocationFactory.create_batch(49)
    fifty = _changelist_queries(admin_client, f"{ADMIN}/{path}")
    assert one == fifty == expected, (one, fifty)


def test_changelist_shows_rows_and_the_low_stock_filter(admin_client, product, main):
    stock(product, main, 3)
    InventoryItem.objects.update(reorder_point=5)
    response = admin_client.get(f"{ADMIN}/inventoryitem/?stock=low")
    assert product.sku in response.content.decode()
    response = admin_client.get(f"{ADMIN}/inventoryitem/?stock=ok")
    assert product.sku not in response.content.decode()


def test_receive_stock_action_asks_for_a_quantity_then_calls_the_service(admin_client, product,
                                                                         main, east):
    rows = [stock(product, main, 1), stock(product, east, 1)]
    selected = {"action": "receive_stock", ACTION_CHECKBOX_NAME: [str(r.id) for r in rows]}
    form = admin_client.post(f"{ADMIN}/inventoryitem/", selected)
    assert form.status_code == 200
    assert b"Receive stock" in form.content and b'name="quantity"' in form.content
    assert StockMovement.objects.count() == 2
    bad = admin_client.post(f"{ADMIN}/inventoryitem/", {**selected, "apply": "1", "quantity": "0"})
    assert bad.status_code == 200 and InventoryItem.objects.filter(on_hand=1).count() == 2
    done = admin_client.post(f"{ADMIN}/inventoryitem/", {**selected, "apply": "1", "quantity": "25",
                                                         "reason": "delivery",
                                                         "reference_id": "PO-42"})
    assert done.status_code == 302
    assert sorted(InventoryItem.objects.values_list("on_hand", flat=True)) == [26, 26]
    received = StockMovement.objects.filter(reference_id="PO-42")
    assert received.count() == 2 and {m.actor for m in received} == {"admin:admin"}
    assert_ledger_matches_counters()


def test_release_reservation_action(admin_client, product, main):
    stock(product, main, 10)
    [active] = services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=4)],
                                      reference_type="cart", reference_id="c")
    response = admin_client.post(f"{ADMIN}/reservation/", {"action": "release_reservations",
                                                           ACTION_CHECKBOX_NAME: [str(active.id)]})
    assert response.status_code == 302
    assert Reservation.objects.get(id=active.id).status == "released"
    assert InventoryItem.objects.get().reserved == 0
    assert StockMovement.objects.filter(kind="release", actor="admin:admin").count() == 1


def test_the_ledger_and_reservations_are_read_only(admin_client, product, main):
    row = stock(product, main, 2)
    movement = StockMovement.objects.get()
    assert admin_client.get(f"{ADMIN}/stockmovement/add/").status_code == 403
    detail = admin_client.get(f"{ADMIN}/stockmovement/{movement.id}/change/")
    assert detail.status_code == 200 and b'name="on_hand_delta"' not in detail.content
    assert admin_client.post(f"{ADMIN}/stockmovement/{movement.id}/change/",
                             {"reason": "x"}).status_code == 403
    assert admin_client.get(f"{ADMIN}/stockmovement/{movement.id}/delete/").status_code == 403
    assert admin_client.get(f"{ADMIN}/reservation/add/").status_code == 403
    assert admin_client.get(f"{ADMIN}/inventoryitem/{row.id}/delete/").status_code == 403


def test_adding_a_location_and_a_row_goes_through_the_services(admin_client, product):
    response = admin_client.post(f"{ADMIN}/location/add/",
                                 {"code": "WEST", "name": "West", "priority": "20",
                                                            "is_active": "on", "address": "{}"})
    assert response.status_code == 302, response.content[:2000]
    west = Location.objects.get(code="WEST")
    assert (west.priority, west.version) == (20, 1)
    bad = admin_client.post(f"{ADMIN}/location/add/",
                            {"code": "has space", "name": "x", "priority": "1",
                                                       "address": "{}"})
    assert bad.status_code == 200 and Location.objects.count() == 1
    response = admin_client.post(f"{ADMIN}/inventoryitem/add/",
                                 {"product": str(product.id), "location": str(west.id),
                                                                 "reorder_point": "4",
                                  "safety_stock": "1"})
    assert response.status_code == 302, response.content[:2000]
    row = InventoryItem.objects.get()
    assert (row.on_hand, row.reorder_point, row.sku) == (0, 4, product.sku)
    response = admin_client.post(f"{ADMIN}/inventoryitem/{row.id}/change/", {"reorder_point": "9",
                                                                             "safety_stock": "2"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.reorder_point, row.safety_stock, row.version) == (9, 2, 2)


def test_reservations_and_movements_are_searched_by_exact_reference(admin_client, product, main):
    stock(product, main, 5, reference_id="PO-77")
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                           reference_type="order", reference_id="order-77")
    found = admin_client.get(f"{ADMIN}/reservation/?q=order-77")
    assert found.status_code == 200 and b"order-77" in found.content
    assert b"order-77" not in admin_client.get(f"{ADMIN}/reservation/?q=order-7").content
    assert b"PO-77" in admin_client.get(f"{ADMIN}/stockmovement/?q=PO-77").content


# --- the row's page: receive, adjust, transfer --------------------------------------------------


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def _move(client, row, move: str, data: dict):
    response = client.post(f"{ADMIN}/inventoryitem/{row.id}/{move}/", data, follow=True)
    assert response.redirect_chain[-1][0] == f"{ADMIN}/inventoryitem/{row.id}/change/"
    return response


def test_a_rows_page_offers_receive_adjust_and_transfer_as_plain_forms(admin_client, product,
                                                                       main):
    row = stock(product, main, 20)
    page = admin_client.get(f"{ADMIN}/inventoryitem/{row.id}/change/").content.decode()
    for move, label in (("receive", "Receive stock"), ("adjust", "Adjust stock"),
                        ("transfer", "Transfer stock")):
        assert f'action="{ADMIN}/inventoryitem/{row.id}/{move}/"' in page
        assert f'value="{label}"' in page
    assert 'id="id_adjust_reason"' in page and 'id="id_receive_reason"' in page
    assert page.index('id="stock-moves"') < page.index('id="inventoryitem_form"')  # not nested


def test_adjust_from_the_row_page_calls_the_service_and_says_what_happened(admin_client, product,
                                                                          main):
    row = stock(product, main, 20, reference_id="")
    response = _move(admin_client, row, "adjust", {"delta": "-3", "reason": "damaged"})
    assert f"{product.sku} @ MAIN: adjusted \u22123 (damaged), on hand 17" in _messages(response)
    movement = StockMovement.objects.get(kind="adjust")
    assert (movement.on_hand_delta, movement.reason, movement.actor) == (-3, "damaged",
                                                                         "admin:admin")
    added = _move(admin_client, row, "adjust", {"delta": "5", "reason": "cycle count"})
    assert f"{product.sku} @ MAIN: adjusted +5 (cycle count), on hand 22" in _messages(added)
    assert_ledger_matches_counters()


def test_receive_and_transfer_from_the_row_page(admin_client, product, main, east):
    row = stock(product, main, 10)
    received = _move(admin_client, row, "receive", {"quantity": "5", "reference_id": "PO-7"})
    assert f"{product.sku} @ MAIN: received 5 (PO-7), on hand 15" in _messages(received)
    assert StockMovement.objects.get(kind="receive", reference_id="PO-7").actor == "admin:admin"
    moved = _move(admin_client, row, "transfer", {"to_location": "EAST", "quantity": "4"})
    assert (f"{product.sku} @ MAIN: transferred 4 to EAST, on hand 11 here and 4 at EAST"
            in _messages(moved))
    assert InventoryItem.objects.get(product=product, location=east).on_hand == 4
    assert_ledger_matches_counters()


@pytest.mark.parametrize(("move", "data", "says"), [
    ("adjust", {"delta": "-30", "reason": "lost"}, "insufficient_stock"),  # below reserved
    ("adjust", {"delta": "0", "reason": "nothing"}, "Must not be zero"),
    ("adjust", {"delta": "-1"}, "reason"),  # a reason is required
    ("receive", {"quantity": "0"}, "quantity"),
    ("transfer", {"to_location": "EAST", "quantity": "9"}, "insufficient_stock"),  # 3 reserved
    ("transfer", {"to_location": "MAIN", "quantity": "1"}, "to_location"),  # its own location
    ("transfer", {"to_location": "NOWHERE", "quantity": "1"}, "to_location"),
])
def test_a_refused_move_is_an_error_message_and_writes_nothing(admin_client, product, main, east,
                                                               move, data, says):
    from inventory.tests.factories import snapshot

    row = stock(product, main, 10)
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=3)],
                           reference_type="cart", reference_id="c")
    before = snapshot()
    response = _move(admin_client, row, move, data)
    [message] = [m for m in response.context["messages"]]
    assert message.level_tag == "error" and says in str(message), str(message)
    assert snapshot() == before


def test_moves_need_the_change_permission_and_a_post(client, admin_client, product, main):
    from django.contrib.auth.models import Permission, User

    from inventory.tests.factories import snapshot

    row = stock(product, main, 10)
    viewer = User.objects.create_user("looker", password="x", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_inventoryitem"))
    client.force_login(viewer)
    page = client.get(f"{ADMIN}/inventoryitem/{row.id}/change/")
    assert page.status_code == 200 and b'id="stock-moves"' not in page.content
    before = snapshot()
    for move in ("receive", "adjust", "transfer"):
        forged = client.post(f"{ADMIN}/inventoryitem/{row.id}/{move}/",
                             {"quantity": "5", "delta": "5", "reason": "x", "to_location": "MAIN"})
        assert forged.status_code == 403, move
    assert admin_client.get(f"{ADMIN}/inventoryitem/{row.id}/adjust/").status_code == 405
    assert snapshot() == before


def test_a_rows_page_runs_a_fixed_number_of_queries_whatever_the_locations(admin_client, product,
                                                                           main):
    row = stock(product, main, 5)
    url = f"{ADMIN}/inventoryitem/{row.id}/change/"
    few = _changelist_queries(admin_client, url)
    LocationFactory.create_batch(30)
    assert _changelist_queries(admin_client, url) == few
    assert admin_client.get(url).content.decode().count("<option") >= 31  # the transfer targets
