"""The hot-path insert helper writes what the ORM would."""

import uuid
from decimal import Decimal

import pytest

from customers.models import Customer
from orders.models import Order
from stateset.db import insert_rows
from stateset.models import ApiKey, IdempotencyRecord

pytestmark = pytest.mark.django_db


def test_insert_rows_matches_the_orm_for_arrays_json_and_auto_timestamps():
    keys = [ApiKey(name=f"k{i}", prefix="sk_x", key_hash=uuid.uuid4().hex * 2,
                   scopes=["orders:read", "*"])
            for i in range(3)]
    insert_rows(keys)
    stored = {k.name: k for k in ApiKey.objects.all()}
    assert set(stored) == {"k0", "k1", "k2"}
    assert stored["k1"].scopes == ["orders:read", "*"] and stored["k1"].created_at is not None
    assert all(not k._state.adding for k in keys)
    record = IdempotencyRecord(owner="o", key="k", method="POST", path="/p", request_hash="h",
                               response_body={"a": [1, "x"], "n": None},
                               locked_until=keys[0].created_at, expires_at=keys[0].created_at)
    insert_rows([record])
    assert record.id is not None and IdempotencyRecord.objects.get(id=record.id).response_body == {
        "a": [1, "x"], "n": None}


def test_insert_rows_reads_back_database_defaults():
    customer = Customer.objects.create(email="d@example.com")
    orders = [Order(customer=customer, subtotal=Decimal("1.00"), total_amount=Decimal("1.00"))
              for _ in range(2)]
    insert_rows(orders, returning=("order_number",))
    numbers = [o.order_number for o in orders]
    assert all(n.startswith("ORD-") for n in numbers) and len(set(numbers)) == 2
    assert sorted(Order.objects.values_list("order_number", flat=True)) == sorted(numbers)


def test_insert_rows_of_nothing_is_a_no_op(django_assert_num_queries):
    with django_assert_num_queries(0):
        insert_rows([])
