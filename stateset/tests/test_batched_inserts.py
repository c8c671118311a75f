"""``stateset.db.batched_inserts``: held INSERTs go as one statement, before anything that could
see them, and an error in one of them is the caller's error."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from catalog.models import Product
from stateset.db import batched_inserts, insert_rows
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def products(*skus: str) -> list[Product]:
    return [Product(sku=sku, name=sku, price="1.00") for sku in skus]


def test_held_inserts_of_several_tables_are_one_statement():
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), batched_inserts():
        insert_rows(products("B-1", "B-2"))
        insert_rows([Event(type="product.created", payload={"sku": "B-1"})])
        insert_rows(products("B-3"))
    sent = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]  # the test's transaction
    assert len(sent) == 1 and sent[0].startswith("WITH w0 AS (INSERT")
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["B-1", "B-2", "B-3"]
    assert Event.objects.filter(type="product.created").count() == 1


def test_the_next_statement_sees_the_held_rows():
    with transaction.atomic(), batched_inserts():
        insert_rows(products("SEEN-1"))
        with CaptureQueriesContext(connection) as queries:
            assert Product.objects.filter(sku="SEEN-1").exists()
        assert len(queries) == 2  # the held INSERT, then the read
        insert_rows(products("SEEN-2"))
    assert Product.objects.filter(sku="SEEN-2").exists()


def test_an_insert_that_reads_back_is_not_held():
    with transaction.atomic(), batched_inserts():
        rows = products("BACK-1")
        with CaptureQueriesContext(connection) as queries:
            insert_rows(rows, returning=("version",))
        assert len(queries) == 1 and rows[0].version == 1


def test_a_failing_held_insert_rolls_the_whole_change_back():
    insert_rows(products("DUP-1"))
    with pytest.raises(IntegrityError), transaction.atomic(), batched_inserts():
        insert_rows([Event(type="product.created", payload={})])
        insert_rows(products("DUP-1"))  # the SKU's unique index refuses it at the flush
    assert Product.objects.filter(sku="DUP-1").count() == 1
    assert not Event.objects.exists()


def test_an_exception_in_the_block_sends_nothing():
    with (CaptureQueriesContext(connection) as queries, pytest.raises(RuntimeError),
          transaction.atomic(), batched_inserts()):
        insert_rows(products("GONE-1"))
        raise RuntimeError("refused")
    assert not any("INSERT" in q["sql"] for q in queries)
    assert not Product.objects.filter(sku="GONE-1").exists()

