"""``generate_data`` on tiny numbers: counts, money adds up, partition keys travel, the load-test
rows."""

from collections import Counter
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Sum

from catalog.models import Product
from catalog.seed import LOADTEST_PRODUCT_ID
from customers.models import Customer
from customers.seed import LOADTEST_CUSTOMER_ID
from inventory.models import InventoryItem, StockMovement
from orders.models import Order, OrderEvent, OrderItem
from stateset.management.commands.generate_data import EMAIL_DOMAIN, LOADTEST_STOCK

ORDERS, PRODUCTS, CUSTOMERS = 120, 30, 15


PLAIN_TABLES = ["catalog_product", "customers_customer", "customers_address", "inventory_location",
                "inventory_inventoryitem", "orders_orderitem"]


def _indexes() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)",
                       [PLAIN_TABLES])
        return set(cursor.fetchall())


def _foreign_keys() -> set[tuple[str, str, str]]:
    """Top-level foreign keys (PostgreSQL clones them per partition under other names)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM "
            "pg_constraint "
                       "WHERE contype = 'f' AND conparentid = 0")
        return set(cursor.fetchall())


@pytest.mark.django_db(transaction=True)  # VACUUM cannot run inside a test's transaction
def test_generate_data_loads_a_consistent_data_set_once():
    # One load, several checks: each load-and-flush of the partitioned tables costs seconds.
    keys_before, indexes_before = _foreign_keys(), _indexes()
    out = StringIO()
    call_command("generate_data", orders=ORDERS, products=PRODUCTS, customers=CUSTOMERS, batch=50,
                 stdout=out)
    generated = {"output": out.getvalue(), "keys_before": keys_before}
    # The indexes dropped for the load are back, as they were.
    assert _indexes() == indexes_before
    check_counts(generated)
    check_totals_are_the_sum_of_their_items()
    check_children_carry_their_orders_partition_key(generated)
    check_order_numbers_follow_time_and_the_sequence_continues()
    check_stock_matches_the_ledger_and_the_load_test_rows_exist()
    check_refuses_a_database_that_already_holds_generated_data()


def _generated_orders():
    return Order.objects.filter(customer__email__endswith="@" + EMAIL_DOMAIN)


def check_counts(generated):
    assert _generated_orders().count() == ORDERS
    assert Customer.objects.filter(email__endswith="@" + EMAIL_DOMAIN).count() == CUSTOMERS
    assert Product.objects.filter(sku__regex=r"^[A-Z]{3}-[0-9]{7}$").count() == PRODUCTS
    items = OrderItem.objects.filter(order__in=_generated_orders())
    assert ORDERS <= items.count() <= 3 * ORDERS
    assert OrderEvent.objects.filter(order__in=_generated_orders(),
                                     kind="created").count() == ORDERS
    assert "VACUUM (ANALYZE)" in generated["output"]


def check_totals_are_the_sum_of_their_items():
    sums = dict(OrderItem.objects.values("order_id").annotate(total=Sum("total_price"))
                .values_list("order_id", "total"))
    prices = dict(Product.objects.values_list("id", "price"))
    for order in _generated_orders():
        assert order.total_amount == sums[order.id] == order.subtotal
        assert order.total_amount > Decimal("0")
    for item in OrderItem.objects.filter(order__in=_generated_orders()):
        assert item.unit_price == prices[item.product_id]
        assert item.total_price == item.unit_price * item.quantity
        assert item.quantity_fulfilled in (0, item.quantity)


def check_children_carry_their_orders_partition_key(generated):
    created = dict(_generated_orders().values_list("id", "created_at"))
    for order_id, order_created_at in OrderItem.objects.values_list("order_id", "order_created_at"):
        assert created[order_id] == order_created_at
    for order_id, order_created_at, at in OrderEvent.objects.values_list("order_id",
                                                                         "order_created_at",
                                                                        "created_at"):
        assert created[order_id] == order_created_at == at
    # The foreign keys dropped for the load are back (and were checked when added back).
    assert _foreign_keys() == generated["keys_before"]


def check_order_numbers_follow_time_and_the_sequence_continues():
    numbers = list(_generated_orders().order_by("created_at", "id").values_list("order_number",
                                                                                flat=True))
    assert len(set(numbers)) == ORDERS
    as_int = [int(n.removeprefix("ORD-")) for n in numbers]
    assert as_int == sorted(as_int)
    with connection.cursor() as cursor:
        cursor.execute("SELECT orders_next_number()")
        following = int(cursor.fetchone()[0].removeprefix("ORD-"))
    assert following > max(as_int)


def check_stock_matches_the_ledger_and_the_load_test_rows_exist():
    product = Product.objects.get(pk=LOADTEST_PRODUCT_ID)
    assert (product.sku, product.price, product.currency, product.is_active) == ("TEST-001",
                                                                                 Decimal("29.99"),
                                                                                 "USD", True)
    assert Customer.objects.filter(pk=LOADTEST_CUSTOMER_ID).exists()
    stock = InventoryItem.objects.filter(product=product).aggregate(available=Sum("available"))[
        "available"]
    assert stock >= LOADTEST_STOCK
    ledger = Counter()
    for item_id, delta in StockMovement.objects.values_list("inventory_item_id", "on_hand_delta"):
        ledger[item_id] += delta
    for item in InventoryItem.objects.all():
        assert ledger[item.id] == item.on_hand
    generated_products = Product.objects.filter(sku__regex=r"^[A-Z]{3}-[0-9]{7}$")
    assert InventoryItem.objects.filter(
        product__in=generated_products).count() == PRODUCTS + PRODUCTS // 2


def check_refuses_a_database_that_already_holds_generated_data():
    with pytest.raises(CommandError, match="already holds generated data"):
        call_command("generate_data", orders=5, products=5, stdout=StringIO())
    assert _generated_orders().count() == ORDERS
