"""Back office for shipments: fast on big tables (joins chosen up front, bounded counts, searches
that hit indexes); statuses change only through ``fulfillment.services``, so the rules hold here
as in the API."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from fulfillment import services
from fulfillment.models import Shipment, ShipmentItem
from orders.admin import OrderAdmin
from orders.models import Order
from orders.selectors import order_filter
from stateset.admin_site import (
    BoundedCountPaginator,
    ReadOnlyInline,
    ServiceModelAdmin,
    admin_actor,
    run_each,
)


class ShipmentItemInline(ReadOnlyInline):
    model = ShipmentItem
    fk_name = "shipment"
    fields = ("sku", "name", "quantity")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ShipmentItem]:
        return super().get_queryset(request).select_related("order_item")

    @admin.display(description="SKU")
    def sku(self, item: ShipmentItem) -> str:
        return item.order_item.sku

    @admin.display(description="name")
    def name(self, item: ShipmentItem) -> str:
        return item.order_item.name


@admin.register(Shipment)
class ShipmentAdmin(ServiceModelAdmin):
    list_display = ("id", "order_number", "status", "carrier", "service", "tracking_number",
                    "location_code", "shipped_at", "delivered_at", "created_at")
    list_filter = ("status", "location")  # status leads an index; location_id has its own
    list_select_related = ("order", "location")
    # see get_search_results: tracking number or order, both indexed
    search_fields = ("tracking_number",)
    search_help_text = (
        "A tracking number (exact), an order number (ORD-000123) or a customer's email.")
    show_full_result_count = False
    paginator = BoundedCountPaginator
    list_per_page = 50
    ordering = ("-created_at", "-id")
    inlines = [ShipmentItemInline]
    actions = ["mark_shipped", "mark_delivered", "cancel_shipments"]
    fields = ("order", "location", "status", "carrier", "service", "tracking_number", "shipped_at",
              "delivered_at", "version", "created_at", "updated_at")
    # The services own everything but the carrier's details; those are saved through
    # shipment_update.
    readonly_fields = ("order", "location", "status", "shipped_at", "delivered_at", "version",
                       "created_at", "updated_at")

    @admin.display(description="order")
    def order_number(self, shipment: Shipment) -> str:
        return shipment.order.order_number

    @admin.display(description="location")
    def location_code(self, shipment: Shipment) -> str:
        return shipment.location.code

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Shipment],
                           search_term: str) -> tuple[QuerySet[Shipment], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        orders = order_filter(search=term).values("id")
        return queryset.filter(Q(tracking_number=term) | Q(order_id__in=orders)), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # shipments are created through the API, which checks allocation and stock

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Shipment, form: Any, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data
                   if name in ("carrier", "service", "tracking_number")}
        if not changes:
            return
        services.shipment_update(shipment_id=obj.id, actor=admin_actor(request), **changes)

    @admin.action(description="Mark selected shipments shipped (consumes their stock)",
                  permissions=["change"])
    def mark_shipped(self, request: HttpRequest, queryset: QuerySet[Shipment]) -> None:
        run_each(self, request, queryset,
                 lambda pk: services.shipment_ship(shipment_id=pk, actor=admin_actor(request)),
                 label="id", noun="shipment(s)", done_as="shipped")

    @admin.action(description="Mark selected shipments delivered", permissions=["change"])
    def mark_delivered(self, request: HttpRequest, queryset: QuerySet[Shipment]) -> None:
        run_each(self, request, queryset,
                 lambda pk: services.shipment_deliver(shipment_id=pk, actor=admin_actor(request)),
                 label="id", noun="shipment(s)", done_as="delivered")

    @admin.action(description="Cancel selected shipments (pending only)", permissions=["change"])
    def cancel_shipments(self, request: HttpRequest, queryset: QuerySet[Shipment]) -> None:
        run_each(self, request, queryset,
                 lambda pk: services.shipment_cancel(shipment_id=pk, actor=admin_actor(request)),
                 label="id", noun="shipment(s)", done_as="cancelled")


class ShipmentInline(ReadOnlyInline):
    """An order's shipments on its page, read-only; each links to its own page (actions live
    there)."""

    model = Shipment
    fk_name = "order"
    fields = ("status", "carrier", "service", "tracking_number", "location", "shipped_at",
              "delivered_at")
    show_change_link = True
    ordering = ("created_at", "id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Shipment]:
        return super().get_queryset(request).select_related("location")


@admin.action(
    description="Cancel selected orders (releases their stock, cancels pending shipments)",
    permissions=["change"])
def cancel_orders(model_admin: OrderAdmin, request: HttpRequest, queryset: QuerySet[Order]) -> None:
    run_each(model_admin, request, queryset, lambda pk: services.order_cancel(
        order_id=pk, actor=admin_actor(request), reason="admin action"),
        label="order_number", noun="order(s)", done_as="now cancelled")


OrderAdmin.extend(inline=ShipmentInline, action=cancel_orders)
