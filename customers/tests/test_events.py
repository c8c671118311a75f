"""SPEC §4.7: an import batch of customers publishes customer.created / customer.updated for each
customer it writes, in one INSERT; the API's own writes are covered in test_address_updates."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers import services
from customers.tests.factories import CustomerFactory
from webhooks.tests.factories import outbox

pytestmark = pytest.mark.django_db


def test_an_import_batch_publishes_each_written_customer_once_in_one_insert():
    old = CustomerFactory(email="old@example.com", first_name="Old")
    CustomerFactory(email="same@example.com", first_name="Same", last_name="", phone="")
    with outbox() as written, CaptureQueriesContext(connection) as queries:
        results = services.customers_import(rows=[
            {"email": "new@example.com", "first_name": "New"},
            {"email": "old@example.com", "first_name": "Renamed", "shipping_line1": "1 Main St",
             "shipping_city": "Springfield", "shipping_country": "US"},
            {"email": "same@example.com", "first_name": "Same"},
        ])
    assert [r.outcome for r in results] == ["created", "updated", "unchanged"]
    assert [(kind, p["email"]) for kind, p in written] == [
        ("customer.created", "new@example.com"), ("customer.updated", "old@example.com")]
    updated = written[1][1]
    assert (updated["customer_id"], updated["version"], updated["changed"]) == (
        str(old.id), old.version + 1, ["addresses", "first_name"])
    assert len([q for q in queries if q["sql"].startswith('INSERT INTO "webhooks_event"')]) == 1


def test_a_dry_run_publishes_nothing():
    with outbox() as written:
        services.customers_import(rows=[{"email": "dry@example.com"}], dry_run=True)
    assert written == []
