"""Back office for orders: fast at a million rows, every change through the services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest, StreamingHttpResponse

from orders import selectors, services
from orders.models import (
    ChannelOrder,
    Order,
    OrderDay,
    OrderEvent,
    OrderItem,
    Payment,
    ShippingLine,
)
from orders.selectors import order_filter
from stateset.admin_site import (
    BoundedCountPaginator,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceModelAdmin,
    admin_actor,
    run_each,
)
from stateset.csvio import csv_response


class CalendarQuerySet(QuerySet):
    """``dates()`` from the first and last ``created_at`` (two index lookups) instead of a
    ``SELECT DISTINCT date_trunc(...)`` over every row, so the admin's date hierarchy stays fast on
    a million orders. Periods without orders may be offered; choosing one shows an empty page."""

    # Both overrides return lists where QuerySet returns querysets: the date hierarchy only
    # iterates.
    def datetimes(  # type: ignore[override]  # a list, see above
            self, field_name: str, kind: str, order: str = "ASC",
            tzinfo: Any = None) -> list[dt.datetime]:
        return [dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
                for d in self.dates(field_name, kind, order)]

    def dates(  # type: ignore[override]  # a list, see above
            self, field_name: str, kind: str, order: str = "ASC") -> list[dt.date]:
        bounds = self.order_by().aggregate(first=Min(field_name), last=Max(field_name))
        first, last = bounds["first"], bounds["last"]
        if first is None or last is None:
            return []
        first, last = first.date(), last.date()
        periods: list[dt.date] = []
        if kind == "year":
            periods = [dt.date(year, 1, 1) for year in range(first.year, last.year + 1)]
        elif kind == "month":
            month = first.replace(day=1)
            while month <= last:
                periods.append(month)
                month = (month + dt.timedelta(days=32)).replace(day=1)
        else:
            periods = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
        return periods if order == "ASC" else periods[::-1]


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fk_name = "order"
    fields = ("sku", "name", "quantity", "list_price", "unit_price", "total_price",
              "discount_total", "net_total",
              "tax_total", "taxes", "quantity_fulfilled", "quantity_returned")
    show_change_link = False


class ShippingLineInline(ReadOnlyInline):
    model = ShippingLine
    fk_name = "order"
    fields = ("method", "amount", "tax_total", "taxes")


class PaymentInline(ReadOnlyInline):
    model = Payment
    fk_name = "order"
    fields = ("created_at", "kind", "amount", "currency", "status", "provider", "reference",
              "actor")
    ordering = ("created_at", "id")


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fk_name = "order"
    verbose_name_plural = "timeline"
    fields = ("created_at", "kind", "from_status", "to_status", "message", "actor", "data")
    ordering = ("created_at", "id")


@admin.register(Order)
class OrderAdmin(ServiceModelAdmin):
    list_display = ("order_number", "customer_email", "status", "payment_status",
                    "fulfillment_status", "total_amount", "currency", "created_at")
    list_filter = ("status", "payment_status", "fulfillment_status", "channel")
    list_select_related = ("customer",)
    search_fields = ("order_number",)  # see get_search_results: number or email, both indexed
    search_help_text = "An order number (ORD-000123) or a customer's email."
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = BoundedCountPaginator
    list_per_page = 50
    ordering = ("-created_at", "-id")
    # Apps above orders add their inlines (shipments, returns) and actions (cancel) with
    # ``extend``, so orders never imports them.
    inlines = [OrderItemInline, ShippingLineInline, PaymentInline, OrderEventInline]
    actions: list[Any] = ["confirm_orders", "mark_paid", "export_csv", "export_csv_with_items"]
    fields = ("order_number", "customer", "channel", "external_id", "status", "payment_status",
              "fulfillment_status",
              "currency", "subtotal", "discount_total", "discounts", "shipping_total", "tax_total",
              "taxes_included", "total_amount",
              "shipping_address", "billing_address", "notes", "metadata", "version", "created_at",
              "updated_at")
    readonly_fields = tuple(f for f in fields if f != "notes")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        return CalendarQuerySet(self.model,
                                using=self.model._default_manager.db).select_related("customer")

    @admin.display(description="customer", ordering="customer__email")
    def customer_email(self, order: Order) -> str:
        return order.customer.email

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Order],
                           search_term: str) -> tuple[QuerySet[Order], bool]:
        if not search_term.strip():
            return queryset, False
        matching = order_filter(search=search_term)
        return queryset.filter(pk__in=matching.values("pk")), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are taken through the API, which reserves stock

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Order, form: Any, change: bool) -> None:
        if "notes" in form.changed_data:
            services.order_update(order_id=obj.id, changes={"notes": obj.notes},
                                  actor=admin_actor(request))

    def _transition(self, request: HttpRequest, queryset: QuerySet[Order], to_status: str) -> None:
        run_each(self, request, queryset, lambda pk: services.order_transition(
            order_id=pk, to_status=to_status, actor=admin_actor(request), reason="admin action"),
            label="order_number", noun="order(s)", done_as=f"now {to_status}")

    @admin.action(description="Confirm selected orders", permissions=["change"])
    def confirm_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._transition(request, queryset, Order.Status.CONFIRMED)

    @admin.action(description="Record payment received for selected orders", permissions=["change"])
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        run_each(self, request, queryset, lambda pk: services.order_record_payment(
            order_id=pk, payment_status=Order.PaymentStatus.PAID, actor=admin_actor(request),
            reference="admin action"), label="order_number", noun="order(s)", done_as="marked paid")

    @admin.action(description="Export selected orders (CSV)", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Order]) -> StreamingHttpResponse:
        return csv_response("orders.csv", selectors.CSV_COLUMNS,
                            selectors.order_export_rows(queryset))

    @admin.action(description="Export selected orders, a row per line (CSV)", permissions=["view"])
    def export_csv_with_items(self, request: HttpRequest,
                              queryset: QuerySet[Order]) -> StreamingHttpResponse:
        return csv_response("orders.csv", (*selectors.CSV_COLUMNS, *selectors.ITEM_CSV_COLUMNS),
                            selectors.order_export_item_rows(queryset))

    @classmethod
    def extend(cls, *, inline: type[ReadOnlyInline] | None = None, action: Any = None) -> None:
        """For an app above orders: show ``inline`` on the order page (before the timeline) and
        offer ``action`` on the changelist."""
        if inline is not None:
            cls.inlines = [*cls.inlines[:-1], inline, cls.inlines[-1]]
        if action is not None:
            cls.actions = [*cls.actions, action]


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdmin):
    """The timeline across orders, read-only."""

    list_display = ("created_at", "order", "kind", "from_status", "to_status", "actor")
    list_filter = ("kind",)
    list_select_related = ("order",)
    ordering = ("-created_at",)


@admin.register(ChannelOrder)
class ChannelOrderAdmin(ReadOnlyAdmin):
    """Which order each channel's external id is (the uniqueness of SPEC §4.4 "Channel orders")."""

    list_display = ("channel", "external_id", "order")
    list_filter = ("channel",)
    list_select_related = ("order",)
    search_fields = ("=external_id",)
    ordering = ("channel", "external_id")


@admin.register(OrderDay)
class OrderDayAdmin(ReadOnlyAdmin):
    """The dashboard's daily rollup (orders.rollups), for checking a figure."""

    list_display = ("day", "currency", "status", "orders", "revenue", "refreshed_at")
    list_filter = ("currency", "status")
    ordering = ("-day", "-currency", "-status")  # the unique (day, currency, status) index
