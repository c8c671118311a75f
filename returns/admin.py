"""Back office for returns: fast changelist (joins chosen up front, bounded counts, indexed filters
and searches), read-only rows, and actions that call the same services as the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from orders.admin import OrderAdmin
from orders.models import Order
from returns import services
from returns.models import Return, ReturnItem
from stateset.admin_site import (
    BoundedCountPaginator,
    ReadOnlyAdmin,
    ReadOnlyInline,
    admin_actor,
    run_each,
)


class ReturnItemInline(ReadOnlyInline):
    model = ReturnItem
    fk_name = "rma"
    fields = ("sku", "quantity", "condition", "restock", "location")
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReturnItem]:
        return super().get_queryset(request).select_related("order_item", "location")

    @admin.display(description="SKU")
    def sku(self, item: ReturnItem) -> str:
        return item.order_item.sku


@admin.register(Return)
class ReturnAdmin(admin.ModelAdmin):
    list_display = ("rma_number", "order_number", "status", "refund_amount", "currency",
                    "created_at")
    list_filter = ("status",)  # return_status_created_idx
    list_select_related = ("order",)
    search_fields = ("rma_number",)  # see get_search_results: RMA or order number, both indexed
    search_help_text = "An RMA number (RMA-000123) or an order number (ORD-000123)."
    show_full_result_count = False
    paginator = BoundedCountPaginator
    list_per_page = 50
    ordering = ("-created_at", "-id")
    inlines = [ReturnItemInline]
    actions = ["approve_returns", "receive_returns", "refund_returns"]
    fields = ("rma_number", "order", "status", "reason", "refund_amount", "currency", "notes",
              "version", "created_at", "updated_at")
    readonly_fields = fields  # the services own every field

    @admin.display(description="order", ordering="order__order_number")
    def order_number(self, rma: Return) -> str:
        return rma.order.order_number

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Return],
                           search_term: str) -> tuple[QuerySet[Return], bool]:
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        orders = Order.objects.filter(order_number=term).values("id")
        return queryset.filter(Q(rma_number=term) | Q(order_id__in=orders)), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # returns are requested through the API, which checks shipped quantities

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _apply(self, request: HttpRequest, queryset: QuerySet[Return],
               service: Callable[..., Return], done_as: str) -> None:
        run_each(self, request, queryset,
                 lambda pk: service(return_id=pk, actor=admin_actor(request),
                                                             note="admin action"),
                 label="rma_number", noun="return(s)", done_as=done_as)

    @admin.action(description="Approve selected returns", permissions=["change"])
    def approve_returns(self, request: HttpRequest, queryset: QuerySet[Return]) -> None:
        self._apply(request, queryset, services.return_approve, "approved")

    @admin.action(description="Receive selected returns (restocks resellable units)",
                  permissions=["change"])
    def receive_returns(self, request: HttpRequest, queryset: QuerySet[Return]) -> None:
        self._apply(request, queryset, services.return_receive, "received")

    @admin.action(description="Refund selected returns", permissions=["change"])
    def refund_returns(self, request: HttpRequest, queryset: QuerySet[Return]) -> None:
        self._apply(request, queryset, services.return_refund, "refunded")


@admin.register(ReturnItem)
class ReturnItemAdmin(ReadOnlyAdmin):
    """Return lines across returns, read-only (they change through the return's services)."""

    list_display = ("rma", "order_item", "quantity", "condition", "restock", "location")
    list_select_related = ("rma", "order_item", "location")
    ordering = ("-id",)


class ReturnInline(ReadOnlyInline):
    """An order's returns on its page, read-only; each links to its own page (actions live
    there)."""

    model = Return
    fk_name = "order"
    fields = ("rma_number", "status", "reason", "refund_amount", "currency", "created_at")
    show_change_link = True
    ordering = ("created_at", "id")


OrderAdmin.extend(inline=ReturnInline)
