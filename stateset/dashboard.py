"""The back office's dashboard (SPEC §5) — top wiring, beside ``stateset.backoffice``: every figure
comes from an app's selector (indexed or pre-aggregated: ``orders.rollups``), a fixed number of
queries whatever the data, and each links to the changelist filtered to what it counts. The
30-day chart is drawn here as inline SVG: no JavaScript, no CDN."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from inventory.selectors import backorders_waiting, low_stock_rows
from orders.rollups import order_days
from orders.selectors import oldest_unfulfilled, orders_by_status, orders_today
from returns.selectors import returns_awaiting
from stateset.money import money_str
from webhooks.selectors import (
    disabled_endpoints_count,
    endpoints_needing_attention,
    failed_deliveries_count,
)

CAP = 10_000  # counts are exact up to here, "10000+" above
DAYS = 30
NOT_REVENUE = {"cancelled", "refunded"}


def changelist(name: str, **filters: Any) -> str:
    url = reverse(f"admin:{name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def midnight(day: dt.date) -> str:
    """A day's start as the changelist's ``created_at__gte`` takes it: aware, UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).isoformat()


def shown(count: int, cap: int = CAP) -> str:
    return f"{cap}+" if count > cap else str(count)


def figures() -> dict[str, Any]:
    """Every figure, in one read-only transaction whose statements are planned for their own
    values: psycopg prepares a statement after its fifth run, and PostgreSQL's generic plan for
    ``status = $1`` cannot know that ``confirmed`` holds a few rows and ``delivered`` most of a
    million — measured at 1M orders, the oldest-unfulfilled query went from 3 ms to 2 s."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        return _figures()


def _figures() -> dict[str, Any]:
    today = timezone.now().astimezone(dt.UTC).date()
    tomorrow = today + dt.timedelta(days=1)
    orders = "orders_order"
    by_status = orders_by_status(cap=CAP)
    awaiting = returns_awaiting(cap=CAP)
    backorders = backorders_waiting()
    failed = failed_deliveries_count()
    return {
        "today": orders_today(),
        "today_link": changelist(orders, created_at__gte=midnight(today),
                                 created_at__lt=midnight(tomorrow)),
        "by_status": [{"status": status, "count": shown(count),
                       "link": changelist(orders, status__exact=status)}
                      for status, count in by_status.items()],
        "chart": chart(today),
        "unfulfilled": [{**row, "link": reverse("admin:orders_order_change", args=[row["id"]])}
                        for row in oldest_unfulfilled(limit=10)],
        "unfulfilled_link": changelist(orders, fulfillment_status__exact="unfulfilled",
                                       status__exact="confirmed"),
        "backorders": {**backorders, "link": changelist("inventory_backorder",
                                                        status__exact="waiting")},
        "returns": [{"status": status, "count": shown(count),
                     "link": changelist("returns_return", status__exact=status)}
                    for status, count in awaiting.items()],
        "low_stock": [{**row, "link": reverse("admin:inventory_inventoryitem_change",
                                              args=[row["id"]])}
                      for row in low_stock_rows(limit=10)],
        "low_stock_link": changelist("inventory_inventoryitem", stock="low"),
        "failed_webhooks": failed,
        "failed_webhooks_link": changelist("webhooks_delivery", status__exact="failed"),
        "endpoints": [{**row, "link": (changelist("webhooks_delivery", status__exact="failed",
                                                  endpoint__exact=row["id"])
                                       if row["failed"] else
                                       reverse("admin:webhooks_endpoint_change",
                                               args=[row["id"]]))}
                      for row in endpoints_needing_attention()],
        "disabled_endpoints_link": changelist("webhooks_endpoint", is_active__exact="0"),
        "disabled_endpoints": disabled_endpoints_count(),
        "failing_endpoints_link": changelist("webhooks_endpoint", disabled_at__isempty="0"),
    }


# --- the chart ------------------------------------------------------------------------------------

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 720, 220, 48, 28, 12


def chart(today: dt.date) -> dict[str, Any]:
    """Orders per day (bars) and revenue per day in the main currency (a line) over the last
    ``DAYS`` days, from the rollup (today's bar too: at most a minute old)."""
    first = today - dt.timedelta(days=DAYS - 1)
    counts: dict[dt.date, int] = defaultdict(int)
    revenue: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in order_days(first=first, last=today):
        counts[row["day"]] += row["orders"]
        if row["status"] not in NOT_REVENUE:
            revenue[row["currency"]][row["day"]] += row["revenue"]
    days = [first + dt.timedelta(days=n) for n in range(DAYS)]
    totals = {currency: sum(per_day.values(), Decimal(0)) for currency, per_day in revenue.items()}
    main = max(totals, key=lambda c: totals[c]) if totals else None
    return {
        "svg": _svg(days, counts, revenue[main] if main else {}, main),
        "orders": sum(counts.values()),
        "revenue": [(c, money_str(t, c)) for c, t in sorted(totals.items(),
                                                            key=lambda item: -item[1])],
        "main_currency": main,
    }


def _svg(days: list[dt.date], counts: dict[dt.date, int], revenue: dict[dt.date, Decimal],
         currency: str | None) -> SafeString:
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / len(days)
    top_count = max(counts.values(), default=0) or 1
    top_revenue = max(revenue.values(), default=Decimal(0)) or Decimal(1)
    parts = [format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" id="orders-chart" role="img" '
        'viewBox="0 0 {} {}" width="100%" style="max-width:{}px">'
        "<title>Orders per day (bars) and {} revenue per day (line), last {} days</title>",
        WIDTH, HEIGHT, WIDTH, currency or "no", len(days)),
        format_html('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>', PAD_LEFT,
                    PAD_TOP + plot_h, WIDTH - 8, PAD_TOP + plot_h),
        format_html('<text x="4" y="{}" font-size="11" fill="#666">{}</text>', PAD_TOP + 10,
                    top_count),
        format_html('<text x="4" y="{}" font-size="11" fill="#666">0</text>', PAD_TOP + plot_h)]
    points = []
    for index, day in enumerate(days):
        x = PAD_LEFT + index * slot
        height = plot_h * counts.get(day, 0) / top_count
        next_day = day + dt.timedelta(days=1)
        link = changelist("orders_order", created_at__gte=midnight(day),
                          created_at__lt=midnight(next_day))
        parts.append(format_html(
            '<a href="{}"><rect class="bar" x="{}" y="{}" width="{}" height="{}" '
            'fill="#79aec8"><title>{}: {} orders</title></rect></a>',
            link, f"{x + 1:.1f}", f"{PAD_TOP + plot_h - height:.1f}", f"{max(slot - 2, 1):.1f}",
            f"{height:.1f}", day.isoformat(), counts.get(day, 0)))
        if index % 5 == 0 or index == len(days) - 1:
            parts.append(format_html(
                '<text x="{}" y="{}" font-size="10" fill="#666">{}</text>', f"{x:.1f}",
                HEIGHT - 8, day.strftime("%m-%d")))
        y = PAD_TOP + plot_h - float(plot_h * revenue.get(day, Decimal(0)) / top_revenue)
        points.append(f"{x + slot / 2:.1f},{y:.1f}")
    if currency:
        parts.append(format_html(
            '<polyline id="revenue-line" points="{}" fill="none" stroke="#ba2121" '
            'stroke-width="2"/>', " ".join(points)))
        parts.append(format_html(
            '<text x="{}" y="{}" font-size="11" fill="#ba2121" text-anchor="end">max {} {}'
            "</text>", WIDTH - 8, PAD_TOP + 10, money_str(top_revenue, currency), currency))
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))
