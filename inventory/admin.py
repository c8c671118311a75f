"""Back office for stock: every change goes through ``inventory.services``; lists stay fast on big
tables (joins chosen up front, bounded counts, searches that hit indexes); the ledger is
read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse

from inventory import selectors, services
from inventory.models import (
    MAX_QUANTITY,
    Backorder,
    InventoryItem,
    Location,
    Reservation,
    StockMovement,
)
from stateset.admin_site import BoundedCountPaginator, ReadOnlyAdmin, admin_actor
from stateset.csvio import csv_response
from stateset.errors import DomainError

MAX_ACTION_ROWS = services.MAX_LINES


class ExactReferenceSearch(admin.ModelAdmin[Any]):
    """Search by an exact ``reference_id`` (case-sensitive, as stored), so the plain b-tree index on
    it answers; Django's ``=field`` search would compare ``UPPER(...)`` and scan the table."""

    search_fields = ("reference_id",)
    search_help_text = "An exact reference id (an order, a cart, a transfer, a purchase order)."

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any],
                           search_term: str) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(reference_id=term), False



def _error_text(exc: DomainError) -> str:
    return f"{exc.message} ({exc.code})"


# --- locations ------------------------------------------------------------------------------------


class LocationForm(forms.ModelForm):
    class Meta:
        model = Location
        fields = ("code", "name", "priority", "is_active", "address")

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if not services.LOCATION_CODE_RE.match(code):
            raise forms.ValidationError(
                "Letters, digits, '.', '_' and '-', starting with a letter or digit.")
        return code


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    form = LocationForm
    list_display = ("code", "name", "priority", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("code", "name")  # a handful of rows
    ordering = ("priority", "code")
    show_full_result_count = False
    readonly_fields = ("version", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Location | None = None) -> tuple[str,
                                                                                              ...]:
        # The code is an identity other systems know the location by: set once.
        return (*self.readonly_fields, "code") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Location, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {f: data[f] for f in form.changed_data
                       if f in {"name", "priority", "address", "is_active"}}
            if changes:
                saved = services.location_update(location_id=obj.pk, **changes)
                obj.version, obj.updated_at = saved.version, saved.updated_at
            return
        created = services.location_create(code=data["code"], name=data["name"],
                                           priority=data["priority"],
                                           address=data.get("address") or {},
                                           is_active=data["is_active"])
        obj.pk, obj.version = created.pk, created.version
        obj.created_at, obj.updated_at = created.created_at, created.updated_at
        obj._state.adding = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: rows, reservations and the ledger refer to it


# --- inventory rows -------------------------------------------------------------------------------


class LowStockFilter(admin.SimpleListFilter):
    title = "stock level"
    parameter_name = "stock"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("low", "At or below reorder point"), ("ok", "Above reorder point")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "low":
            return queryset.filter(selectors.low_stock_q())  # the partial low-stock index
        if self.value() == "ok":
            return queryset.exclude(selectors.low_stock_q())
        return queryset


class ReceiveStockForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY,
                                  help_text="Units received into each row.")
    reason = forms.CharField(max_length=services.MAX_REASON, required=False)
    reference_id = forms.CharField(max_length=services.MAX_REFERENCE_ID, required=False,
                                   help_text="E.g. the purchase order or delivery note.")


class InventoryItemForm(forms.ModelForm):
    class Meta:
        model = InventoryItem
        fields = ("product", "location", "reorder_point", "safety_stock")


@admin.register(InventoryItem)
class InventoryItemAdmin(admin.ModelAdmin):
    form = InventoryItemForm
    list_display = ("sku", "location", "on_hand", "reserved", "available", "reorder_point",
                    "safety_stock", "is_low", "updated_at")
    list_filter = ("location", LowStockFilter)
    list_select_related = ("location",)
    search_fields = ("=sku",)  # sku__iexact: the UPPER(sku) index
    search_help_text = "An exact SKU (any case)."
    raw_id_fields = ("product",)
    show_full_result_count = False
    paginator = BoundedCountPaginator
    list_per_page = 50
    ordering = ("-created_at", "-id")
    actions = ["receive_stock", "export_csv"]
    counters = ("sku", "on_hand", "reserved", "available", "version", "created_at", "updated_at")

    def get_fields(self, request: HttpRequest, obj: InventoryItem | None = None) -> list[Any]:
        if obj is None:
            return ["product", "location", "reorder_point", "safety_stock"]
        return ["product", "location", *self.counters[:4], "reorder_point", "safety_stock",
                *self.counters[4:]]

    def get_readonly_fields(self, request: HttpRequest,
                            obj: InventoryItem | None = None) -> tuple[str, ...]:
        return ("product", "location", *self.counters) if obj is not None else ()

    @admin.display(boolean=True, description="low stock")
    def is_low(self, item: InventoryItem) -> bool:
        return item.available <= item.reorder_point

    def save_model(self, request: HttpRequest, obj: InventoryItem, form: Any, change: bool) -> None:
        data = form.cleaned_data
        try:
            if change:
                saved = services.inventory_item_update(item_id=obj.pk, actor=admin_actor(request),
                                                       changes={
                    "reorder_point": data["reorder_point"], "safety_stock": data["safety_stock"]})
            else:
                saved = services.inventory_item_create(product_id=data["product"].pk,
                                                       location_id=data["location"].pk,
                                                       on_hand=0,
                                                       reorder_point=data["reorder_point"],
                                                       safety_stock=data["safety_stock"],
                                                       actor=admin_actor(request))
        except DomainError as exc:
            messages.error(request, _error_text(exc))
            return
        obj.pk, obj.version, obj.sku = saved.pk, saved.version, saved.sku
        obj._state.adding = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the ledger refers to every row

    @admin.action(description="Export selected rows (CSV, re-importable)", permissions=["view"])
    def export_csv(self, request: HttpRequest,
                   queryset: QuerySet[InventoryItem]) -> StreamingHttpResponse:
        return csv_response("inventory.csv", selectors.EXPORT_COLUMNS,
                            selectors.inventory_export_rows(queryset))

    @admin.action(description="Receive stock into the selected rows", permissions=["change"])
    def receive_stock(self, request: HttpRequest,
                      queryset: QuerySet[InventoryItem]) -> HttpResponse | None:
        rows = list(queryset.order_by("id").values("id", "product_id", "location_id",
                                                   "sku")[: MAX_ACTION_ROWS + 1])
        if len(rows) > MAX_ACTION_ROWS:
            self.message_user(request, f"Select at most {MAX_ACTION_ROWS} rows.", messages.ERROR)
            return None
        form = ReceiveStockForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.stock_receive_many(
                    lines=[services.StockLine(location_id=r["location_id"],
                                              product_id=r["product_id"],
                                              quantity=data["quantity"]) for r in rows],
                    reason=data["reason"] or "received in back office",
                    reference_id=data["reference_id"], actor=admin_actor(request),
                )
            except DomainError as exc:
                self.message_user(request, _error_text(exc), messages.ERROR)
                return None
            self.message_user(request,
                              f"Received {data['quantity']} unit(s) into {len(rows)} row(s).")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Receive stock",
            "opts": self.model._meta,
            "rows": rows,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/inventory/receive_stock.html", context)


# --- reservations ---------------------------------------------------------------------------------


@admin.register(Reservation)
class ReservationAdmin(ExactReferenceSearch, ReadOnlyAdmin):
    list_display = ("id", "sku", "location_code", "quantity", "quantity_fulfilled", "status",
                    "reference_type", "reference_id", "expires_at", "created_at")
    list_filter = ("status",)
    list_select_related = ("inventory_item", "inventory_item__location")
    list_per_page = 50
    ordering = ("-created_at", "-id")
    actions = ["release_reservations"]
    fields = ("inventory_item", "quantity", "quantity_fulfilled", "status", "reference_type",
              "reference_id", "expires_at", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="SKU", ordering="inventory_item__sku")
    def sku(self, reservation: Reservation) -> str:
        return reservation.inventory_item.sku

    @admin.display(description="location")
    def location_code(self, reservation: Reservation) -> str:
        return reservation.inventory_item.location.code

    def has_release_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("inventory.change_reservation")

    @admin.action(description="Release the selected reservations", permissions=["release"])
    def release_reservations(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
        ids = list(queryset.filter(status=Reservation.Status.ACTIVE).order_by("id")
                   .values_list("id", flat=True)[: MAX_ACTION_ROWS + 1])
        if not ids:
            self.message_user(request, "None of the selected reservations is active.",
                              messages.WARNING)
            return
        if len(ids) > MAX_ACTION_ROWS:
            self.message_user(request, f"Select at most {MAX_ACTION_ROWS} reservations.",
                              messages.ERROR)
            return
        try:
            released = services.stock_release(reservation_ids=ids, actor=admin_actor(request),
                                               reason="released in back office")
        except DomainError as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
            return
        self.message_user(request, f"Released {len(released)} reservation(s).")


# --- the ledger -----------------------------------------------------------------------------------


@admin.register(StockMovement)
class StockMovementAdmin(ExactReferenceSearch, ReadOnlyAdmin):
    list_display = ("created_at", "kind", "sku", "location_code", "on_hand_delta", "reserved_delta",
                    "on_hand_after",
                    "reserved_after", "reason", "reference_type", "reference_id", "actor")
    list_filter = ("kind",)
    list_select_related = ("inventory_item", "inventory_item__location")
    list_per_page = 50
    ordering = ("-created_at", "-id")
    fields = ("inventory_item", "kind", "on_hand_delta", "reserved_delta", "on_hand_after",
              "reserved_after", "reason", "reference_type", "reference_id", "actor", "created_at")
    readonly_fields = fields
    actions = ["export_csv"]

    @admin.action(description="Export selected movements (CSV)", permissions=["view"])
    def export_csv(self, request: HttpRequest,
                   queryset: QuerySet[StockMovement]) -> StreamingHttpResponse:
        return csv_response("movements.csv", selectors.MOVEMENT_EXPORT_COLUMNS,
                            selectors.movement_export_rows(queryset))

    @admin.display(description="SKU")
    def sku(self, movement: StockMovement) -> str:
        return movement.inventory_item.sku

    @admin.display(description="location")
    def location_code(self, movement: StockMovement) -> str:
        return movement.inventory_item.location.code



@admin.register(Backorder)
class BackorderAdmin(ReadOnlyAdmin):
    """The backorder queue: order lines waiting for stock, oldest order first (served in that order
    by the inventory services whenever sellable stock grows)."""

    list_display = ("queued_at", "reference_number", "sku", "quantity", "quantity_waiting",
                    "status")
    list_filter = ("status",)
    search_fields = ("=reference_number",)
    ordering = ("queued_at", "reference_id", "id")
