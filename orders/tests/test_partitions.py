"""Monthly partitions of orders and their timeline; database-enforced references (SPEC §4.4)."""

import datetime as dt
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from orders.models import Order, OrderEvent, OrderItem
from stateset.partitions import ensure_partitions, list_partitions, partition_name

pytestmark = pytest.mark.django_db


def partition_of(table: str, row_id) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [row_id])
        return cursor.fetchone()[0]


def test_orders_and_events_land_in_their_monthly_partition(make_order):
    order = make_order()
    month = order.created_at.date().replace(day=1)
    assert partition_of("orders_order", order.id) == partition_name("orders_order", month)
    event = OrderEvent.objects.filter(order_id=order.id).first()
    assert partition_of("orders_orderevent", event.id) == partition_name("orders_orderevent", month)


def test_an_orphan_order_item_is_rejected_by_the_database(make_order):
    order = make_order()
    item = OrderItem.objects.filter(order_id=order.id).values("product_id").first()
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        OrderItem.objects.create(order_id=uuid.uuid4(), order_created_at=order.created_at,
                                 product_id=item["product_id"], sku="X", name="X", quantity=1,
                                 unit_price="1.00", total_price="1.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # The right order id with the wrong partition key is an orphan too.
        OrderItem.objects.create(order_id=order.id,
                                 order_created_at=order.created_at - dt.timedelta(days=40),
                                 product_id=item["product_id"], sku="X", name="X", quantity=1,
                                 unit_price="1.00", total_price="1.00")


def test_order_number_is_not_reused_across_partitions(make_order):
    old = make_order()
    Order.objects.filter(id=old.id).update()  # noop, keeps the row where it is
    numbers = set(Order.objects.values_list("order_number", flat=True))
    new = make_order()
    new.refresh_from_db()
    assert new.order_number not in numbers


def test_stray_rows_in_the_default_partition_move_when_their_month_is_created(make_order):
    order = make_order()
    far = dt.datetime(2031, 5, 17, 12, tzinfo=dt.UTC)
    with connection.cursor() as cursor:
        # Move the order (and its children, whose keys cascade) to a month without a partition.
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("UPDATE orders_order SET created_at = %s WHERE id = %s", [far, order.id])
        cursor.execute("UPDATE orders_orderitem SET order_created_at = %s WHERE order_id = %s",
                       [far, order.id])
        cursor.execute("UPDATE orders_orderevent SET order_created_at = %s WHERE order_id = %s",
                       [far, order.id])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # check them now, as a commit would
    assert partition_of("orders_order", order.id) == "orders_order_default"
    created = ensure_partitions("orders_order", months_ahead=0, today=far.date())
    assert created == [partition_name("orders_order", dt.date(2031, 5, 1))]
    assert partition_of("orders_order", order.id) == "orders_order_p2031_05"
    # The children were neither cascaded away nor orphaned, and the keys are back and enforced.
    assert OrderItem.objects.filter(order_id=order.id).count() == 1
    assert OrderEvent.objects.filter(order_id=order.id).count() == 2
    names = {p.name for p in list_partitions("orders_order")}
    assert "orders_order_default" in names  # re-attached
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "UPDATE orders_orderitem SET order_created_at = order_created_at + interval '1 day' "
                           "WHERE order_id = %s", [order.id])


def test_create_partitions_command_keeps_months_ahead(capsys):
    call_command("create_partitions", "--months-ahead", "6")
    out = capsys.readouterr().out
    assert "orders_order:" in out and "inventory_stockmovement:" in out
    today = dt.date.today().replace(day=1)
    names = {p.name for p in list_partitions("orders_order")}
    month = today
    for _ in range(7):
        assert partition_name("orders_order", month) in names
        month = (month + dt.timedelta(days=32)).replace(day=1)
    call_command("create_partitions", "--months-ahead", "6")
    assert "0 created" in capsys.readouterr().out.splitlines()[0]


@pytest.mark.parametrize("option", ["--months-ahead", "--months-back"])
@pytest.mark.parametrize("value", ["-1", "121"])
def test_create_partitions_refuses_months_out_of_range(option, value):
    before = {p.name for p in list_partitions("orders_order")}
    with pytest.raises(CommandError, match="from 0 to 120"):
        call_command("create_partitions", option, value)
    assert {p.name for p in list_partitions("orders_order")} == before


def test_partition_pruning_on_date_filters():
    plan = Order.objects.filter(created_at__gte=dt.datetime(2031, 5, 2, tzinfo=dt.UTC),
                                created_at__lt=dt.datetime(2031, 5, 3, tzinfo=dt.UTC)).explain()
    assert "orders_order_p2026" not in plan  # only the matching (or default) partition is scanned
