"""The dashboard's daily rollup (orders.rollups): recomputed, idempotent, backfilled."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone

from orders import rollups, tasks
from orders.models import Order, OrderDay
from orders.tests.factories import OrderFactory, StockedProductFactory

pytestmark = pytest.mark.django_db


def placed(days_ago, product):
    """An order placed ``days_ago`` days ago (its partition and its children's references too)."""
    when = timezone.now() - dt.timedelta(days=days_ago)
    with mock.patch("django.utils.timezone.now", return_value=when):
        return OrderFactory(lines=[(product, 1)])


def figures():
    return {(r.day, r.currency, r.status): (r.orders, r.revenue)
            for r in OrderDay.objects.all()}


def test_refresh_rolls_up_orders_per_day_currency_and_status_and_is_idempotent():
    product = StockedProductFactory(price=Decimal("10.00"))
    first, second = OrderFactory(lines=[(product, 1)]), OrderFactory(lines=[(product, 2)])
    placed(3, product)
    today = timezone.now().date()
    assert rollups.order_days_refresh(days=2) == 1
    total = first.total_amount + second.total_amount
    assert figures() == {(today, "USD", "pending"): (2, total)}
    rollups.order_days_refresh(days=2)
    assert figures() == {(today, "USD", "pending"): (2, total)}

    Order.objects.filter(pk=first.pk).update(status="cancelled")
    tasks.order_days_refresh.apply()
    assert figures() == {(today, "USD", "pending"): (1, second.total_amount),
                         (today, "USD", "cancelled"): (1, first.total_amount)}
    Order.objects.filter(pk=second.pk).update(status="cancelled")
    rollups.order_days_refresh(days=1)
    assert figures() == {(today, "USD", "cancelled"): (2, total)}  # a stale combination is gone


def test_the_backfill_command_reaches_older_days():
    product = StockedProductFactory(price=Decimal("10.00"))
    old = placed(40, product)
    out = StringIO()
    call_command("orders_rollup", "--days", "45", stdout=out)
    assert "45 day(s)" in out.getvalue()
    day = (timezone.now() - dt.timedelta(days=40)).date()
    assert figures() == {(day, "USD", "pending"): (1, old.total_amount)}
