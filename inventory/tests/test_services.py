"""The stock services: every rule, and that every refusal writes nothing."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from catalog.seed import LOADTEST_PRODUCT_ID
from inventory import selectors, services
from inventory.models import InventoryItem, Location, Reservation, StockMovement
from inventory.seed import seed_demo_stock
from inventory.services import ReserveLine, StockLine
from inventory.tests.factories import (
    LocationFactory,
    ProductFactory,
    assert_ledger_matches_counters,
    item,
    snapshot,
    stock,
)
from stateset.errors import (
    Conflict,
    InsufficientStock,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from stateset.locking import recording

pytestmark = pytest.mark.django_db


def movements(row: InventoryItem) -> list[tuple[str, int, int, int, int]]:
    return list(StockMovement.objects.filter(inventory_item=row).order_by("created_at", "id")
                .values_list("kind", "on_hand_delta", "reserved_delta", "on_hand_after",
                             "reserved_after"))


# --- receive, adjust, return ---------------------------------------------------------------------


def test_receive_creates_the_row_and_writes_one_receive_movement(product, main):
    first = stock(product, main, 10, reference_type="po", reference_id="PO-1")
    assert (first.on_hand, first.reserved, first.available, first.sku) == (10, 0, 10, product.sku)
    row = services.stock_receive(sku=product.sku.lower(), location_id=main.id, quantity=5,
                                 reason="delivery")
    assert (row.id, row.on_hand, row.version) == (first.id, 15, first.version + 1)
    assert movements(row) == [("receive", 10, 0, 10, 0), ("receive", 5, 0, 15, 0)]
    first = StockMovement.objects.order_by("created_at").first()
    assert (first.reference_type, first.reference_id, first.reason) == ("po", "PO-1", "test stock")


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001, 2.5, "5", True, None])
def test_receive_refuses_bad_quantities_and_writes_nothing(product, main, quantity):
    before = snapshot()
    with pytest.raises(ValidationFailed):
        services.stock_receive(product_id=product.id, location_id=main.id, quantity=quantity)
    assert snapshot() == before


def test_receive_unknown_product_or_location_is_not_found(product, main):
    with pytest.raises(NotFound) as exc:
        services.stock_receive(sku="NOPE", location_id=main.id, quantity=1)
    assert exc.value.code == "product_not_found"
    with pytest.raises(NotFound) as exc:
        services.stock_receive(product_id=product.id, location_id=uuid.uuid4(), quantity=1)
    assert exc.value.code == "location_not_found"
    assert not InventoryItem.objects.exists()


def test_sku_must_match_product_id_when_both_are_given(product, main):
    with pytest.raises(ValidationFailed) as exc:
        services.stock_receive(product_id=product.id, sku="OTHER", location_id=main.id, quantity=1)
    assert exc.value.code == "sku_mismatch"
    row = services.stock_receive(product_id=product.id, sku=product.sku.lower(),
                                 location_id=main.id, quantity=1)
    assert row.on_hand == 1


def test_adjust_needs_a_reason_and_a_non_zero_delta(product, main):
    stock(product, main, 5)
    before = snapshot()
    with pytest.raises(ValidationFailed):
        services.stock_adjust(product_id=product.id, location_id=main.id, delta=-1, reason="  ")
    with pytest.raises(ValidationFailed):
        services.stock_adjust(product_id=product.id, location_id=main.id, delta=0, reason="count")
    assert snapshot() == before
    row = services.stock_adjust(product_id=product.id, location_id=main.id, delta=-2,
                                reason="damaged")
    assert row.on_hand == 3
    assert movements(row)[-1] == ("adjust", -2, 0, 3, 0)


def test_adjust_cannot_take_on_hand_below_reserved(product, main):
    stock(product, main, 10)
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=7)],
                           reference_type="cart", reference_id="c1")
    before = snapshot()
    with pytest.raises(InsufficientStock) as exc:
        services.stock_adjust(product_id=product.id, location_id=main.id, delta=-4, reason="count")
    assert exc.value.details.items() >= {"on_hand": 10, "reserved": 7, "available": 3,
                                         "delta": -4}.items()
    assert snapshot() == before
    assert services.stock_adjust(product_id=product.id, location_id=main.id, delta=-3,
                                 reason="count").on_hand == 7


def test_adjust_up_creates_a_missing_row_and_down_on_a_missing_row_is_insufficient(product, main):
    with pytest.raises(InsufficientStock):
        services.stock_adjust(product_id=product.id, location_id=main.id, delta=-1, reason="count")
    assert not InventoryItem.objects.exists()
    assert services.stock_adjust(product_id=product.id, location_id=main.id, delta=4,
                                 reason="found").on_hand == 4


def test_return_puts_units_back_and_creates_the_row(product, main, east):
    row = services.stock_return(product_id=product.id, location_id=east.id, quantity=2,
                                reason="rma", reference_type="return", reference_id="RMA-1")
    assert row.on_hand == 2
    assert movements(row) == [("return", 2, 0, 2, 0)]
    rows = services.stock_return_many(
        lines=[StockLine(location_id=main.id, quantity=1, product_id=product.id),
                                             StockLine(location_id=east.id, quantity=3,
                                                       product_id=product.id),
                                             StockLine(location_id=main.id, quantity=1,
                                                       product_id=product.id)])
    assert [r.on_hand for r in rows] == [2, 5, 2]
    assert StockMovement.objects.filter(kind="return").count() == 3  # one per changed row, per call


# --- transfer -------------------------------------------------------------------------------------


def test_transfer_moves_available_units_with_two_linked_movements(product, main, east):
    stock(product, main, 10)
    source, target = services.stock_transfer(product_id=product.id, from_location_id=main.id,
                                             to_location_id=east.id, quantity=4, reason="rebalance")
    assert (source.on_hand, target.on_hand) == (6, 4)
    out, into = StockMovement.objects.get(kind="transfer_out"), StockMovement.objects.get(
        kind="transfer_in")
    assert (out.on_hand_delta, into.on_hand_delta) == (-4, 4)
    assert out.reference_type == into.reference_type == "transfer"
    assert out.reference_id == into.reference_id and out.reference_id


def test_transfer_cannot_move_reserved_units_and_writes_nothing(product, main, east):
    stock(product, main, 10)
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=8)],
                           reference_type="cart", reference_id="c")
    before = snapshot()
    with pytest.raises(InsufficientStock) as exc:
        services.stock_transfer(product_id=product.id, from_location_id=main.id,
                                to_location_id=east.id, quantity=3)
    assert exc.value.details["lines"][0].items() >= {"requested": 3, "available": 2}.items()
    assert snapshot() == before  # not even the destination row


def test_transfer_refuses_the_same_location_and_an_inactive_destination(product, main, east):
    stock(product, main, 5)
    with pytest.raises(ValidationFailed) as exc:
        services.stock_transfer(product_id=product.id, from_location_id=main.id,
                                to_location_id=main.id, quantity=1)
    assert exc.value.code == "same_location"
    Location.objects.filter(id=east.id).update(is_active=False)
    with pytest.raises(ValidationFailed) as exc:
        services.stock_transfer(product_id=product.id, from_location_id=main.id,
                                to_location_id=east.id, quantity=1)
    assert exc.value.code == "location_inactive"


# --- bulk adjust ----------------------------------------------------------------------------------


def test_bulk_adjust_answers_each_row_and_applies_the_valid_ones_together(product, main, east):
    other = ProductFactory()
    stock(product, main, 10)
    stock(other, main, 1)
    rows = [
        {"product_id": str(product.id), "location_id": str(main.id), "delta": -3,
         "reason": "count"},
        # below 0
        {"sku": other.sku, "location_id": str(main.id), "delta": -5, "reason": "count"},
        # unknown product
        {"sku": "NOPE", "location_id": str(main.id), "delta": 1, "reason": "x"},
        # unknown location
        {"sku": other.sku, "location_id": str(uuid.uuid4()), "delta": 1, "reason": "x"},
        # new row
        {"sku": other.sku, "location_id": str(east.id), "delta": 2, "reason": "found"},
        # the same row again: applied after the first, in order
        {"product_id": str(product.id), "location_id": str(main.id), "delta": 1, "reason": "dup"},
        # ... and a third time, now below what is on hand after the two before it (10 - 3 + 1)
        {"product_id": str(product.id), "location_id": str(main.id), "delta": -9, "reason": "x"},
        # not an integer
        {"sku": other.sku, "location_id": str(main.id), "delta": "1", "reason": "x"},
        "not an object",
        # no reason
        {"sku": other.sku, "location_id": str(main.id), "delta": 1},
    ]
    result = services.stock_bulk_adjust(adjustments=rows)
    codes = [r["error"]["code"] if not r["ok"] else "ok" for r in result.results]
    assert codes == ["ok", "insufficient_stock", "product_not_found", "location_not_found", "ok",
                     "ok", "insufficient_stock", "validation_error", "validation_error",
                     "validation_error"]
    assert [r["index"] for r in result.results] == list(range(len(rows)))
    assert result.applied == 3
    assert item(product, main).on_hand == 8
    assert item(other, east).on_hand == 2
    assert item(other, main).on_hand == 1
    moves = StockMovement.objects.filter(kind="adjust", inventory_item=item(product, main))
    assert list(moves.order_by("created_at", "id").values_list("on_hand_delta", "on_hand_after")) \
        == [(-3, 7), (1, 8)]  # one movement per request row, in request order
    assert StockMovement.objects.filter(kind="adjust").count() == 3


def test_bulk_adjust_dry_run_checks_but_writes_nothing(product, main, east):
    stock(product, main, 10)
    before = snapshot()
    result = services.stock_bulk_adjust(adjustments=[
        {"product_id": str(product.id), "location_id": str(main.id), "delta": -11,
         "reason": "count"},
        {"product_id": str(product.id), "location_id": str(east.id), "delta": 3, "reason": "found"},
    ], dry_run=True)
    assert [r["ok"] for r in result.results] == [False, True]
    assert (result.applied, result.valid, result.dry_run) == (0, 1, True)
    assert snapshot() == before


def test_bulk_adjust_refuses_an_empty_or_oversized_list(product, main):
    for adjustments in ([],
                        [{"sku": product.sku, "location_id": str(main.id), "delta": 1,
                          "reason": "r"}] * 1001):
        with pytest.raises(ValidationFailed):
            services.stock_bulk_adjust(adjustments=adjustments)
    assert not InventoryItem.objects.exists()


# --- reserve --------------------------------------------------------------------------------------


def test_reserve_picks_locations_by_priority_and_splits_a_line(product, main, east):
    stock(product, east, 10)
    stock(product, main, 3)
    reservations = services.stock_reserve(lines=[ReserveLine(sku=product.sku, quantity=5)],
                                          reference_type="order", reference_id="o-1")
    assert [(r.inventory_item.location_id, r.quantity, r.line_index) for r in reservations] == [
        (main.id, 3, 0), (east.id, 2, 0)]
    assert (item(product, main).reserved, item(product, east).reserved) == (3, 2)
    assert all(r.status == "active" and r.expires_at is None for r in reservations)
    assert movements(item(product, main))[-1] == ("reserve", 0, 3, 3, 3)


def test_reserve_skips_inactive_locations_unless_none_is_left(product, main, east):
    stock(product, main, 5)
    stock(product, east, 5)
    Location.objects.filter(id=main.id).update(is_active=False)
    reservations = services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=5)],
                                          reference_type="order", reference_id="o")
    assert [r.inventory_item.location_id for r in reservations] == [east.id]
    with pytest.raises(InsufficientStock):
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                               reference_type="o", reference_id="o2")
    with pytest.raises(ValidationFailed) as exc:
        services.stock_reserve(
            lines=[ReserveLine(product_id=product.id, quantity=1, location_id=main.id)],
                               reference_type="o", reference_id="o3")
    assert exc.value.code == "location_inactive"


def test_reserve_at_a_given_location_and_pinned_lines_go_first(product, main, east):
    stock(product, main, 4)
    stock(product, east, 4)
    reservations = services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=4),
                                                 ReserveLine(product_id=product.id, quantity=4,
                                                             location_id=main.id)],
                                          reference_type="order", reference_id="o")
    assert [(r.line_index, r.inventory_item.location_id) for r in reservations] == [(0, east.id),
                                                                                    (1, main.id)]


def test_a_failed_multi_line_reservation_writes_nothing_and_names_every_short_line(product, main,
                                                                                   east):
    ok, short_a, short_b = product, ProductFactory(), ProductFactory()
    stock(ok, main, 10)
    stock(short_a, main, 2)
    stock(short_a, east, 1)
    stock(short_b, main, 1)
    services.stock_reserve(lines=[ReserveLine(product_id=short_b.id, quantity=1)],
                           reference_type="x", reference_id="held")
    before = snapshot()
    with pytest.raises(InsufficientStock) as exc:
        services.stock_reserve(lines=[ReserveLine(product_id=ok.id, quantity=5),
                                      ReserveLine(sku=short_a.sku, quantity=4),
                                      ReserveLine(product_id=short_b.id, quantity=1),
                                      ReserveLine(product_id=ok.id, quantity=6)],
                               reference_type="order", reference_id="o-1")
    assert exc.value.code == "insufficient_stock"
    assert exc.value.details == {"lines": [
        {"index": 1, "sku": short_a.sku, "product_id": str(short_a.id), "requested": 4,
         "available": 3},
        {"index": 2, "sku": short_b.sku, "product_id": str(short_b.id), "requested": 1,
         "available": 0},
        {"index": 3, "sku": ok.sku, "product_id": str(ok.id), "requested": 6, "available": 5},
    ]}
    assert snapshot() == before


def test_reserve_refuses_unknown_and_inactive_products_and_bad_lines(product, main):
    stock(product, main, 5)
    with pytest.raises(NotFound) as exc:
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1),
                                      ReserveLine(sku="NOPE", quantity=1)],
                               reference_type="o", reference_id="1")
    assert exc.value.details["lines"] == [{"index": 1, "product_id": None, "sku": "NOPE"}]
    with pytest.raises(NotFound):
        services.stock_reserve(
            lines=[ReserveLine(product_id=product.id, quantity=1, location_id=uuid.uuid4())],
                               reference_type="o", reference_id="1")
    for bad in ([], [ReserveLine(product_id=product.id, quantity=0)], [ReserveLine(quantity=1)],
                [ReserveLine(product_id=product.id, quantity=10**9)]):
        with pytest.raises(ValidationFailed):
            services.stock_reserve(lines=bad, reference_type="o", reference_id="1")
    with pytest.raises(ValidationFailed):
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                               reference_type="o", reference_id="")
    with pytest.raises(ValidationFailed):
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                               reference_type="o",
                               reference_id="1", expires_at=timezone.now() - timedelta(seconds=1))
    type(product).objects.filter(id=product.id).update(is_active=False)
    with pytest.raises(ValidationFailed) as exc:
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                               reference_type="o", reference_id="1")
    assert exc.value.code == "product_inactive"
    assert not Reservation.objects.exists()
    assert item(product, main).reserved == 0


def test_reserve_joins_the_callers_durable_transaction_and_rolls_back_with_it(product, main):
    stock(product, main, 5)
    before = snapshot()

    class Boom(Exception):
        pass

    # Two stock changes in one transaction take locks out of the global order (the services say a
    # caller changes stock once per transaction); this test is about the rollback alone.
    with recording(strict=False), pytest.raises(Boom), transaction.atomic(durable=True):
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=2)],
                               reference_type="order", reference_id="o")
        services.stock_release(reference_type="order", reference_id="o")
        raise Boom
    assert snapshot() == before


def test_reserve_publishes_reserved_and_low_stock_events(product, main, events):
    stock(product, main, 10)
    InventoryItem.objects.filter(product=product).update(reorder_point=5)
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=4)],
                           reference_type="o", reference_id="1")
    assert [e for e, _ in events] == ["inventory.received", "inventory.reserved"]
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=2)],
                           reference_type="o", reference_id="2")
    assert [e for e, _ in events] == ["inventory.received", "inventory.reserved",
                                      "inventory.low_stock", "inventory.reserved"]
    low = events[2][1]
    assert (low["sku"], low["available"], low["reorder_point"]) == (product.sku, 4, 5)
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                           reference_type="o", reference_id="3")
    assert [e for e, _ in events].count("inventory.low_stock") == 1  # only when crossing


# --- release, fulfil, expire ----------------------------------------------------------------------


def test_release_by_reference_restores_availability_and_is_idempotent(product, main, east):
    stock(product, main, 3)
    stock(product, east, 3)
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=5)],
                           reference_type="order", reference_id="o")
    released = services.stock_release(reference_type="order", reference_id="o", reason="cancelled")
    assert sorted(r.quantity for r in released) == [2, 3]
    assert all(r.status == "released" for r in Reservation.objects.all())
    assert selectors.available_by_product([product.id]) == {product.id: 6}
    assert movements(item(product, east))[-1] == ("release", 0, -2, 3, 0)
    assert services.stock_release(reference_type="order", reference_id="o") == []
    assert StockMovement.objects.filter(kind="release").count() == 2


def test_release_by_ids_and_unknown_ids(product, main):
    stock(product, main, 5)
    [r] = services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=5)],
                                 reference_type="cart", reference_id="c")
    before = snapshot()
    with pytest.raises(NotFound) as exc:
        services.stock_release(reservation_ids=[r.id, uuid.uuid4()])
    assert exc.value.code == "reservation_not_found"
    assert snapshot() == before
    with pytest.raises(ValidationFailed):
        services.stock_release()
    assert [x.id for x in services.stock_release(reservation_ids=[r.id])] == [r.id]
    assert item(product, main).available == 5


def test_fulfil_consumes_part_then_all_of_a_reservation(product, main):
    stock(product, main, 10)
    [r] = services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=4)],
                                 reference_type="order", reference_id="o")
    r = services.stock_fulfil(reservation_id=r.id, quantity=1, reference_type="shipment",
                              reference_id="s1")
    assert (r.status, r.quantity_fulfilled) == ("active", 1)
    row = item(product, main)
    assert (row.on_hand, row.reserved, row.available) == (9, 3, 6)
    with pytest.raises(Conflict) as exc:
        services.stock_fulfil(reservation_id=r.id, quantity=4)
    assert exc.value.code == "exceeds_reservation"
    r = services.stock_fulfil(reservation_id=r.id, quantity=3)
    assert (r.status, r.quantity_fulfilled) == ("fulfilled", 4)
    with pytest.raises(InvalidTransition):
        services.stock_fulfil(reservation_id=r.id, quantity=1)
    with pytest.raises(NotFound):
        services.stock_fulfil(reservation_id=uuid.uuid4(), quantity=1)
    assert movements(item(product, main))[-2:] == [("ship", -1, -1, 9, 3), ("ship", -3, -3, 6, 0)]
    assert StockMovement.objects.get(reference_id="s1").reference_type == "shipment"


def test_releasing_a_partly_fulfilled_reservation_gives_back_the_remainder(product, main):
    stock(product, main, 10)
    [r] = services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=4)],
                                 reference_type="order", reference_id="o")
    services.stock_fulfil(reservation_id=r.id, quantity=1)
    services.stock_release(reference_id="o")
    row = item(product, main)
    assert (row.on_hand, row.reserved) == (9, 0)


def test_fulfil_many_ships_several_rows_at_once(product, main, east):
    stock(product, main, 2)
    stock(product, east, 2)
    reservations = services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=4)],
                                          reference_type="order", reference_id="o")
    done = services.stock_fulfil_many(fulfilments=[(r.id, r.quantity) for r in reservations])
    assert [r.status for r in done] == ["fulfilled", "fulfilled"]
    assert selectors.available_by_product([product.id]) == {product.id: 0}
    assert InventoryItem.objects.filter(on_hand=0, reserved=0).count() == 2


def test_expiry_releases_only_expired_reservations(product, main):
    stock(product, main, 10)
    soon = timezone.now() + timedelta(minutes=5)
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=3)],
                           reference_type="cart", reference_id="a", expires_at=soon)
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=2)],
                           reference_type="cart",
                           reference_id="b", expires_at=soon + timedelta(hours=1))
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                           reference_type="order", reference_id="c")  # never expires
    assert services.reservations_expire() == 0
    assert services.reservations_expire(now=soon + timedelta(seconds=1), batch_size=1) == 1
    statuses = dict(Reservation.objects.values_list("reference_id", "status"))
    assert statuses == {"a": "expired", "b": "active", "c": "active"}
    assert item(product, main).available == 7
    assert services.reservations_expire(now=soon + timedelta(days=365)) == 1
    assert item(product, main).available == 9
    assert movements(item(product, main))[-1] == ("expire", 0, -2, 10, 1)


def test_expiring_many_reservations_of_one_row_writes_one_movement_per_batch(product, main):
    stock(product, main, 10)
    at = timezone.now() + timedelta(minutes=1)
    for n in range(4):
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                               reference_type="cart", reference_id=f"c{n}", expires_at=at)
    assert services.reservations_expire(now=at) == 4
    [m] = StockMovement.objects.filter(kind="expire")
    assert (m.reserved_delta, m.reference_id) == (-4, "")
    assert_ledger_matches_counters()


# --- rows, locations, reconciliation, demo data ---------------------------------------------------


def test_create_row_with_opening_stock_and_conflict_when_it_exists(product, main):
    row = services.inventory_item_create(product_id=product.id, location_id=main.id, on_hand=7,
                                         reorder_point=2)
    # The opening count is applied as a receive (the row is created empty): one version more.
    assert (row.on_hand, row.reorder_point, row.version) == (7, 2, 2)
    assert movements(row) == [("receive", 7, 0, 7, 0)]
    with pytest.raises(Conflict) as exc:
        services.inventory_item_create(sku=product.sku, location_id=main.id, on_hand=1)
    assert exc.value.code == "inventory_exists" and exc.value.details == {"id": str(row.id)}


def test_update_reorder_point_checks_version_and_can_cross_into_low_stock(product, main, events):
    row = stock(product, main, 5)
    from stateset.errors import PreconditionFailed

    with pytest.raises(PreconditionFailed):
        services.inventory_item_update(item_id=row.id, expected_version=row.version + 1,
                                       changes={"reorder_point": 9})
    updated = services.inventory_item_update(item_id=row.id, expected_version=row.version,
                                             changes={"reorder_point": 5})
    assert (updated.reorder_point, updated.version) == (5, row.version + 1)
    assert [e for e, _ in events] == ["inventory.received", "inventory.low_stock"]


def test_location_codes_are_unique_case_insensitively():
    services.location_create(code="MAIN", name="Main")
    with pytest.raises(Conflict) as exc:
        services.location_create(code="main", name="Again")
    assert exc.value.code == "location_exists"
    with pytest.raises(ValidationFailed):
        services.location_create(code="has space", name="x")
    with pytest.raises(ValidationFailed):
        services.location_create(code="OK", name="x", address={"line1": "a\x00b"})
    assert Location.objects.count() == 1


def test_the_database_refuses_reserved_above_on_hand(product, main):
    row = stock(product, main, 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        InventoryItem.objects.filter(id=row.id).update(reserved=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        InventoryItem.objects.filter(id=row.id).update(on_hand=-1)


def test_available_is_a_stored_generated_column(product, main):
    row = stock(product, main, 9)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attgenerated FROM pg_attribute WHERE attrelid = "
            "'inventory_inventoryitem'::regclass "
                       "AND attname = 'available'")
        assert cursor.fetchone()[0] == "s"
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=4)],
                           reference_type="o", reference_id="1")
    assert InventoryItem.objects.filter(id=row.id, available=5).exists()


def test_the_ledger_lands_in_its_monthly_partition(product, main):
    stock(product, main, 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text, created_at FROM inventory_stockmovement")
        partition, created_at = cursor.fetchone()
    assert partition == f"inventory_stockmovement_p{created_at:%Y_%m}"


def test_a_movement_of_an_unprepared_month_goes_to_the_default_partition(product, main):
    row = stock(product, main, 1)
    far = timezone.now() + timedelta(days=3 * 365)
    StockMovement.objects.create(inventory_item=row, kind="adjust", on_hand_delta=1,
                                 on_hand_after=2, reserved_after=0, created_at=far)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM inventory_stockmovement WHERE created_at = %s",
            [far])
        assert cursor.fetchone()[0] == "inventory_stockmovement_default"


def test_reconcile_reports_and_fixes_drift_through_the_ledger(product, main, east):
    stock(product, main, 10)
    stock(product, east, 2)
    services.stock_reserve(
        lines=[ReserveLine(product_id=product.id, quantity=3, location_id=main.id)],
                           reference_type="o", reference_id="1")
    # Simulate a bug or a manual SQL edit that bypassed the services.
    InventoryItem.objects.filter(product=product, location=main).update(reserved=6)
    Reservation.objects.create(inventory_item=item(product, east), quantity=5, reference_type="x",
                               reference_id="y")
    drifts = services.inventory_reconcile()
    assert {(d.location_id, d.reserved, d.expected_reserved, d.fixed) for d in drifts} == {
        (main.id, 6, 3, False), (east.id, 0, 5, False)}
    assert item(product, main).reserved == 6  # a report changes nothing
    fixed = services.inventory_reconcile(fix=True)
    # 5 > on_hand 2
    assert {(d.location_id, d.fixed) for d in fixed} == {(main.id, True), (east.id, False)}
    assert item(product, main).reserved == 3
    m = StockMovement.objects.get(reason="reconcile")
    assert (m.kind, m.reserved_delta, m.reserved_after) == ("adjust", -3, 3)
    assert [d.location_id for d in services.inventory_reconcile()] == [east.id]


def test_seed_demo_stock_is_idempotent(main):
    demo = ProductFactory(id=LOADTEST_PRODUCT_ID, sku="TEST-001")
    others = ProductFactory.create_batch(3)
    retired = ProductFactory(is_active=False)
    shops_own = ProductFactory()  # not a demo product: never given demo stock
    ids = [p.id for p in (*others, retired)]
    first = seed_demo_stock(product_ids=ids)
    assert first["rows"] == 8
    assert seed_demo_stock(product_ids=ids) == {"locations": 0, "rows": 0, "topped_up": 0}
    assert not InventoryItem.objects.filter(product=shops_own).exists()
    assert InventoryItem.objects.get(product=demo, location=main).on_hand == 1_000_000
    assert set(Location.objects.values_list("code", "priority")) == {("MAIN", 0), ("EAST", 10)}
    assert all(selectors.available_by_product([p.id])[p.id] == 400 for p in others)
    services.stock_adjust(product_id=demo.id, location_id=main.id, delta=-600_000, reason="sold")
    assert seed_demo_stock(product_ids=ids)["topped_up"] == 1
    assert item(demo, main).on_hand == 1_000_000
    assert_ledger_matches_counters()


def test_available_by_product_counts_active_locations_only(product, main, east):
    stock(product, main, 4)
    stock(product, east, 6)
    missing = uuid.uuid4()
    Location.objects.filter(id=east.id).update(is_active=False)
    assert selectors.available_by_product([product.id, missing]) == {product.id: 4, missing: 0}


def test_a_catalog_rename_is_copied_to_the_stock_rows_and_their_cached_detail(product, main, api):
    from catalog import services as catalog_services

    row = stock(product, main, 1)
    assert api.get(f"/api/v1/inventory/{row.id}").json()["data"]["sku"] == product.sku  # now cached
    catalog_services.product_update(product_id=product.id, fields={"sku": "RENAMED-1"})
    assert item(product, main).sku == "RENAMED-1"  # the inventory app's trigger, same transaction
    assert api.get(f"/api/v1/inventory/{row.id}").json()["data"]["sku"] == "RENAMED-1"


# --- the ledger invariant under a random mixed workload -----------------------------------------


def test_ledger_reproduces_counters_after_a_random_workload(main, east):
    rng = random.Random(20261129)
    products = ProductFactory.create_batch(4)
    third = LocationFactory(code="WEST", priority=5)
    locations = [main, east, third]
    now = timezone.now()
    errors = 0
    for step in range(400):
        p, loc = rng.choice(products), rng.choice(locations)
        op = rng.choice(["receive", "adjust", "transfer", "reserve", "reserve", "release", "fulfil",
                         "return", "expire", "bulk"])
        try:
            if op == "receive":
                stock(p, loc, rng.randint(1, 20))
            elif op == "adjust":
                services.stock_adjust(product_id=p.id, location_id=loc.id,
                                      delta=rng.choice([-5, -1, 2, 7]), reason="count")
            elif op == "transfer":
                dest = rng.choice([x for x in locations if x != loc])
                services.stock_transfer(product_id=p.id, from_location_id=loc.id,
                                        to_location_id=dest.id, quantity=rng.randint(1, 5))
            elif op == "reserve":
                lines = [ReserveLine(product_id=rng.choice(products).id, quantity=rng.randint(1, 6))
                         for _ in range(rng.randint(1, 3))]
                services.stock_reserve(lines=lines, reference_type="order", reference_id=f"r{step}",
                                       expires_at=rng.choice([None,
                                                              now + timedelta(minutes=rng.randint(1,
                                                                                                  60))]))
            elif op == "release":
                active = list(
                    Reservation.objects.filter(status="active").values_list("reference_id",
                                                                            flat=True)[:5])
                if active:
                    services.stock_release(reference_id=rng.choice(active))
            elif op == "fulfil":
                r = Reservation.objects.filter(status="active").order_by("?").first()
                if r:
                    services.stock_fulfil(reservation_id=r.id, quantity=rng.randint(1, r.remaining))
            elif op == "return":
                services.stock_return(product_id=p.id, location_id=loc.id,
                                      quantity=rng.randint(1, 3))
            elif op == "expire":
                services.reservations_expire(now=now + timedelta(minutes=rng.randint(0, 60)))
            else:
                services.stock_bulk_adjust(adjustments=[
                    {"product_id": str(x.id), "location_id": str(rng.choice(locations).id),
                     "delta": rng.choice([-3, 4]), "reason": "cycle count"} for x in products])
        except (InsufficientStock, Conflict):
            errors += 1
    assert errors > 0  # the workload did hit refusals, and they left no trace
    assert assert_ledger_matches_counters() >= 8
    assert StockMovement.objects.values("kind").distinct().count() == 9
