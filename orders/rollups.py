"""The daily rollup of orders (``orders.models.OrderDay``): its one write and its one read.

The dashboard's 30-day chart would otherwise aggregate a month of orders — at a million orders,
tens of thousands of rows — on every page view. The rollup is recomputed from the orders table
for a window of days, in one statement (an upsert of the fresh figures and a delete of the
combinations that no longer exist), so it is idempotent, needs no lock and two overlapping runs
agree. It is a non-critical asynchronous write: nothing on the order write path touches it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from orders.models import OrderDay

_REFRESH = """
WITH fresh AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, currency, status,
           count(*) AS orders, coalesce(sum(total_amount), 0) AS revenue
    FROM orders_order
    WHERE created_at >= %(start)s AND created_at < %(end)s
    GROUP BY 1, 2, 3
), upserted AS (
    INSERT INTO orders_orderday (day, currency, status, orders, revenue, refreshed_at)
    SELECT day, currency, status, orders, revenue, %(now)s FROM fresh
    ON CONFLICT (day, currency, status) DO UPDATE
        SET orders = EXCLUDED.orders, revenue = EXCLUDED.revenue,
            refreshed_at = EXCLUDED.refreshed_at
    RETURNING 1
)
DELETE FROM orders_orderday AS d
WHERE d.day >= %(first_day)s AND d.day < %(end_day)s
  AND NOT EXISTS (SELECT 1 FROM fresh AS f
                  WHERE f.day = d.day AND f.currency = d.currency AND f.status = d.status)
"""


def order_days_refresh(*, days: int = 2, until: dt.date | None = None) -> int:
    """Recompute the rollup for the ``days`` UTC days up to and including ``until`` (today by
    default). One statement in its own transaction; scans the orders of those days through their
    partitions' ``created_at`` index. Returns the number of rollup rows now in the window."""
    if days < 1:
        raise ValueError("days must be at least 1")
    last = until or timezone.now().astimezone(dt.UTC).date()
    first = last - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(_REFRESH, {"start": start, "end": end, "now": timezone.now(),
                                  "first_day": first, "end_day": last + dt.timedelta(days=1)})
        return OrderDay.objects.filter(day__gte=first, day__lte=last).count()


def order_days(*, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """``[{"day", "currency", "status", "orders", "revenue"}]`` of the window (one index range
    on the unique ``(day, currency, status)``)."""
    rows = (OrderDay.objects.filter(day__gte=first, day__lte=last)
            .order_by("day", "currency", "status")
            .values("day", "currency", "status", "orders", "revenue"))
    return [dict(row) for row in rows]
