"""SPEC §5 "Lists": every registered ModelAdmin's changelist and change page costs as many queries
at 50 rows as at 1 (no per-row queries); big tables show bounded counts; no changelist of a
partitioned table sorts without an index.

Each registered model has a builder below that adds ``n`` rows of it through the apps' factories
and returns an object whose page is opened — for a parent with inlines, one with ``n`` children.
A newly registered admin fails ``test_every_registered_admin_has_a_builder`` until it has one."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from catalog.tests.factories import ProductFactory
from customers.tests.factories import AddressFactory, CustomerFactory
from fulfillment.tests.factories import ShipmentFactory
from imports.models import Import
from inventory.models import Backorder, Reservation, StockMovement
from inventory.tests.factories import LocationFactory, stock
from orders.models import ChannelOrder, OrderDay, OrderEvent
from orders.tests.factories import OrderFactory, ShippedOrderFactory, StockedProductFactory
from returns.tests.factories import ReturnFactory
from stateset import services as platform_services
from stateset.models import IdempotencyRecord
from stateset.partitions import partitioned_tables
from webhooks.tests.factories import DeliveryFactory, EndpointFactory, EventFactory

pytestmark = pytest.mark.django_db
_seq = itertools.count()


def _order_with_lines(n):
    products = StockedProductFactory.create_batch(n, stock=5)
    return OrderFactory(lines=[(product, 1) for product in products])


def _orders(n):
    first = _order_with_lines(n)
    for _ in range(n - 1):
        OrderFactory()
    return first


def _products(n):
    return ProductFactory.create_batch(n)[0]


def _customers(n):
    first = CustomerFactory()
    AddressFactory.create_batch(n, customer=first)
    CustomerFactory.create_batch(n - 1)
    return first


def _addresses(n):
    return AddressFactory.create_batch(n)[0]


def _locations(n):
    return LocationFactory.create_batch(n)[0]


def _inventory_items(n):
    location = LocationFactory()
    return [stock(ProductFactory(), location, 5) for _ in range(n)][0]


def _reservations(n):
    _orders(n)
    return Reservation.objects.order_by("-created_at").first()


def _movements(n):
    _inventory_items(n)
    return StockMovement.objects.order_by("-created_at").first()


def _backorders(n):
    product = ProductFactory(allow_backorder=True)
    for _ in range(n):
        OrderFactory(lines=[(product, 1)])
    return Backorder.objects.first()


def _order_events(n):
    _orders(n)
    return OrderEvent.objects.order_by("-created_at").first()


def _channel_orders(n):
    for _ in range(n):
        OrderFactory(channel="shop", external_id=f"EXT-{next(_seq)}")
    return ChannelOrder.objects.first()


def _order_days(n):
    today = timezone.now().date() - dt.timedelta(days=1000 * next(_seq))
    OrderDay.objects.bulk_create(
        OrderDay(day=today - dt.timedelta(days=k), currency="USD", status="pending", orders=1,
                 revenue=Decimal("1.00"), refreshed_at=timezone.now()) for k in range(n))
    return OrderDay.objects.first()


def _shipments(n):
    first = ShipmentFactory(order=_order_with_lines(n))
    for _ in range(n - 1):
        ShipmentFactory()
    return first


def _returns(n):
    products = StockedProductFactory.create_batch(n, stock=5)
    shipped = ShippedOrderFactory(lines=[(product, 1) for product in products])
    first = ReturnFactory(order=shipped, lines=[(item, 1, "resellable")
                                                for item in shipped.items.order_by("id")])
    for _ in range(n - 1):
        other = ShippedOrderFactory()
        ReturnFactory(order=other, lines=[(other.items.get(), 1, "resellable")])
    return first


def _return_items(n):
    return _returns(n).items.first()


def _api_keys(n):
    return [platform_services.api_key_create(name=f"key-{next(_seq)}", scopes=["orders:read"])[0]
            for _ in range(n)][0]


def _idempotency_records(n):
    expires = timezone.now() + dt.timedelta(days=1)
    return IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(owner="key:x", key=f"k-{next(_seq)}", method="POST", path="/api/v1/x",
                          request_hash="0" * 64, locked_until=expires, expires_at=expires)
        for _ in range(n))[0]


def _endpoints(n):
    return EndpointFactory.create_batch(n)[0]


def _events(n):
    return EventFactory.create_batch(n)[0]


def _deliveries(n):
    endpoint = EndpointFactory()
    return [DeliveryFactory(endpoint=endpoint) for _ in range(n)][0]


def _imports(n):
    return Import.objects.bulk_create(Import(kind="products", file_name=f"f{next(_seq)}.csv")
                                      for _ in range(n))[0]


def _users(n):
    return [User.objects.create_user(f"user{next(_seq)}") for _ in range(n)][0]


def _groups(n):
    return Group.objects.bulk_create(Group(name=f"group {next(_seq)}") for _ in range(n))[0]


BUILDERS: dict[str, Callable[[int], Any]] = {
    "auth.group": _groups, "auth.user": _users,
    "catalog.product": _products,
    "customers.customer": _customers, "customers.address": _addresses,
    "inventory.location": _locations, "inventory.inventoryitem": _inventory_items,
    "inventory.reservation": _reservations, "inventory.stockmovement": _movements,
    "inventory.backorder": _backorders,
    "orders.order": _orders, "orders.orderevent": _order_events,
    "orders.channelorder": _channel_orders, "orders.orderday": _order_days,
    "fulfillment.shipment": _shipments,
    "returns.return": _returns, "returns.returnitem": _return_items,
    "stateset.apikey": _api_keys, "stateset.idempotencyrecord": _idempotency_records,
    "webhooks.endpoint": _endpoints, "webhooks.event": _events, "webhooks.delivery": _deliveries,
    "imports.import": _imports,
}
REGISTERED = sorted(model._meta.label_lower for model in admin.site._registry)
SMALL_TABLES = {"auth.group", "auth.user"}  # Django's own admins, tens of rows


def test_every_registered_admin_has_a_builder():
    assert sorted(set(REGISTERED) - set(BUILDERS)) == []


def _queries(client: Any, url: str, *, rows: int | None = None) -> int:
    client.get(url)  # warm: session, user, content types
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    if rows is not None:  # a changelist: it shows what was built
        assert len(response.context["cl"].result_list) >= min(rows, 50), url
    return len(captured.captured_queries)


def _urls(label: str, obj: Any) -> tuple[str, str]:
    app, model = label.split(".")
    return (reverse(f"admin:{app}_{model}_changelist"),
            reverse(f"admin:{app}_{model}_change", args=[obj.pk]))


@pytest.mark.parametrize("label", REGISTERED)
def test_changelist_and_change_page_cost_the_same_at_1_and_50_rows(admin_client, label):
    build = BUILDERS[label]
    changelist, change = _urls(label, build(1))
    at_one = (_queries(admin_client, changelist, rows=1), _queries(admin_client, change))
    changelist, change = _urls(label, build(50))
    at_fifty = (_queries(admin_client, changelist, rows=51), _queries(admin_client, change))
    assert at_fifty == at_one, f"(changelist, change page) queries: 1 row {at_one}, 50 {at_fifty}"


@pytest.mark.parametrize("label", [label for label in REGISTERED if label not in SMALL_TABLES])
def test_big_tables_show_bounded_counts(label):
    model_admin = next(a for m, a in admin.site._registry.items() if m._meta.label_lower == label)
    assert model_admin.show_full_result_count is False


PARTITIONED_TABLES = {"orders_order", "orders_orderevent", "inventory_stockmovement"}
PARTITIONED = [label for label in REGISTERED
               if next(m for m in admin.site._registry if m._meta.label_lower == label)
               ._meta.db_table in PARTITIONED_TABLES]


def test_the_partitioned_tables_are_these():
    assert set(partitioned_tables()) == PARTITIONED_TABLES


@pytest.mark.parametrize("label", PARTITIONED)
def test_no_changelist_of_a_partitioned_table_sorts_without_an_index(admin_client, label):
    """With sorting priced out (``enable_sort = off``), a Sort node left in the plan of the
    changelist's page query means no index gives its order: at a million rows it would sort them
    all on every page view."""
    BUILDERS[label](1)
    response = admin_client.get(_urls(label, BUILDERS[label](1))[0])
    queryset = response.context["cl"].result_list.query
    sql, params = queryset.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    sorts = [line for line in plan.splitlines()
             if re.match(r"\s*(->\s+)?(Incremental )?Sort\s+\(", line)]
    assert sorts == [], plan
