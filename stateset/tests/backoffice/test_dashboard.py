"""The back office's dashboard (SPEC §5): every figure, each a link to its filtered list, a fixed
number of queries whatever the data, the 30-day chart drawn on the server."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.models import InventoryItem
from inventory.tests.factories import LocationFactory, stock
from orders import rollups
from orders import services as order_services
from orders.tests.factories import OrderFactory, StockedProductFactory
from webhooks.models import Delivery, Endpoint, Event
from webhooks.tests.factories import EndpointFactory

pytestmark = pytest.mark.django_db


def build(orders):
    product = StockedProductFactory(price=Decimal("10.00"), stock=orders * 3 + 5)
    for n in range(orders):
        order = OrderFactory(lines=[(product, 1)])
        if n % 2:
            order_services.order_transition(order_id=order.id, to_status="confirmed")
    row = stock(StockedProductFactory(stock=0), LocationFactory(code=f"DC-{orders}"), 1)
    InventoryItem.objects.filter(pk=row.pk).update(reorder_point=5)
    endpoint = EndpointFactory(is_active=False)
    for _ in range(min(orders, 3)):
        Delivery.objects.create(endpoint=endpoint, event=Event.objects.create(type="order.created"),
                                status="failed", attempts=8)
    rollups.order_days_refresh(days=2)


def test_the_dashboard_shows_every_figure_with_its_link(admin_client):
    build(4)
    yesterday = timezone.now() - dt.timedelta(days=1)
    with mock.patch("django.utils.timezone.now", return_value=yesterday):
        OrderFactory()
    rollups.order_days_refresh(days=2)
    html = admin_client.get("/admin/").content.decode()
    status_cells = dict(re.findall(r'id="status-(\w+)"><a href="[^"]+">(\d+)</a>', html))
    assert status_cells["pending"] == "3" and status_cells["confirmed"] == "2"
    assert '/admin/orders/order/?status__exact=pending' in html
    assert html.count('class="bar"') == 30 and 'id="revenue-line"' in html
    # Money with the currency's digits, not the rollup column's three.
    caption = re.search(r"revenue ([\d.]+) USD", html)
    assert caption is not None and re.fullmatch(r"\d+\.\d\d", caption.group(1)), caption
    assert re.search(r">max \d+\.\d\d USD</text>", html)
    bars = re.findall(r"<title>(\d{4}-\d\d-\d\d): (\d+) orders</title>", html)
    assert bars[-1] == (timezone.now().date().isoformat(), "4")
    assert bars[-2] == (yesterday.date().isoformat(), "1")
    unfulfilled = html.split('id="oldest-unfulfilled"')[1].split("</table>")[0]
    assert unfulfilled.count("/admin/orders/order/") == 2
    assert 'id="backorders-waiting"' in html
    assert "/admin/inventory/backorder/?status__exact=waiting" in html
    assert '/admin/returns/return/?status__exact=requested' in html
    low = html.split('id="low-stock"')[1].split("</table>")[0]
    assert "DC-4" in low and "/admin/inventory/inventoryitem/" in low
    assert '/admin/inventory/inventoryitem/?stock=low' in html
    endpoint = Endpoint.objects.get()
    assert f"endpoint__exact={endpoint.id}" in html and "3 failed in 24 h" in html
    assert "/admin/webhooks/endpoint/?is_active__exact=0" in html
    assert "<script" not in html.split('id="dashboard"')[1].split("</svg>")[0]


def test_every_link_of_the_dashboard_opens(admin_client):
    build(2)
    html = admin_client.get("/admin/").content.decode()
    links = set(re.findall(r'href="(/admin/[^"]+)"', html.split('id="dashboard"')[1]))
    assert len(links) > 10
    for link in sorted(links):
        response = admin_client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link
        assert "?e=1" not in response.get("Location", ""), link


def test_the_dashboard_reads_a_fixed_number_of_queries(admin_client):
    """Session, user, the figures (today 2, per status 1, chart 1, unfulfilled 1, backorders 1,
    returns 1, low stock 1, failed deliveries 1, endpoints 2) inside their transaction (begin,
    plan_cache_mode, commit), the recent actions — as many at 1 order as at 13."""
    counts = []
    for orders in (1, 12):
        build(orders)
        admin_client.get("/admin/")
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get("/admin/").status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1] <= 18, counts
