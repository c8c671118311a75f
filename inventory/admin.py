"""Back office for stock: every change goes through ``inventory.services``; lists stay fast on big
tables (joins chosen up front, bounded counts, searches that hit indexes); the ledger is
read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse

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
                saved = services.location_update(location_id=obj.pk, actor=admin_actor(request),
                                                 **changes)
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


class AdjustStockForm(forms.Form):
    delta = forms.IntegerField(min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY,
                               help_text="Units to add (positive) or remove (negative).")
    reason = forms.CharField(max_length=services.MAX_REASON,
                             help_text="Why the count changes, e.g. damaged, cycle count.")
    reference_id = forms.CharField(max_length=services.MAX_REFERENCE_ID, required=False)

    def clean_delta(self) -> int:
        delta: int = self.cleaned_data["delta"]
        if delta == 0:
            raise forms.ValidationError("Must not be zero.")
        return delta


class TransferStockForm(forms.Form):
    to_location = forms.ModelChoiceField(queryset=Location.objects.none(), label="To location",
                                         to_field_name="code")
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY,
                                  help_text="Available units to move (reserved units stay).")
    reason = forms.CharField(max_length=services.MAX_REASON, required=False)

    def __init__(self, *args: Any, item: InventoryItem, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A handful of rows: every active location but the row's own.
        field: Any = self.fields["to_location"]
        field.queryset = (Location.objects.filter(is_active=True)
                          .exclude(pk=item.location_id).order_by("priority", "code"))


def _signed(value: int) -> str:
    return f"+{value}" if value > 0 else f"\u2212{-value}"


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
    change_form_template = "admin/inventory/inventoryitem/change_form.html"

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

    # --- the row's page: receive, adjust, transfer (SPEC §5) ---------------------------------

    MOVES = ("receive", "adjust", "transfer")

    def get_urls(self) -> list[Any]:
        return [*(path(f"<uuid:item_id>/{move}/",
                       self.admin_site.admin_view(self._move_view(move)),
                       name=f"inventory_inventoryitem_{move}") for move in self.MOVES),
                *super().get_urls()]

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], add: bool = False,
                           change: bool = False, form_url: str = "",
                           obj: InventoryItem | None = None) -> HttpResponse:
        if obj is not None and self.has_change_permission(request, obj):
            context["stock_moves"] = [
                {"title": title, "submit": submit, "form": form,
                 "url": reverse(f"admin:inventory_inventoryitem_{move}", args=[obj.pk])}
                for move, title, submit, form in (
                    ("receive", "Receive", "Receive stock",
                     ReceiveStockForm(auto_id="id_receive_%s")),
                    ("adjust", "Adjust the count", "Adjust stock",
                     AdjustStockForm(auto_id="id_adjust_%s")),
                    ("transfer", "Transfer", "Transfer stock",
                     TransferStockForm(item=obj, auto_id="id_transfer_%s")),
                )]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _move_view(self, move: str) -> Any:
        def view(request: HttpRequest, item_id: Any) -> HttpResponse:
            return self.move_stock(request, item_id, move)
        return view

    def move_stock(self, request: HttpRequest, item_id: Any, move: str) -> HttpResponse:
        """One stock move from the row's page, through the same service as the API: POST only,
        ``inventory.change_inventoryitem``; a bad input or a refusal is an error message with
        nothing written, a success says what happened and what is on hand now."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        item = InventoryItem.objects.select_related("location").filter(pk=item_id).first()
        if item is None or not self.has_change_permission(request, item):
            raise PermissionDenied
        page = HttpResponseRedirect(reverse("admin:inventory_inventoryitem_change",
                                            args=[item.pk]))
        form: forms.Form = (TransferStockForm(request.POST, item=item) if move == "transfer"
                            else AdjustStockForm(request.POST) if move == "adjust"
                            else ReceiveStockForm(request.POST))
        if not form.is_valid():
            problems = "; ".join(f"{name}: {' '.join(str(e) for e in errors)}"
                                 for name, errors in form.errors.items())
            messages.error(request, f"{item.sku} @ {item.location.code}: not done ({problems}).")
            return page
        data = form.cleaned_data
        actor = admin_actor(request)
        where = f"{item.sku} @ {item.location.code}"
        try:
            if move == "receive":
                row = services.stock_receive(product_id=item.product_id,
                                             location_id=item.location_id,
                                             quantity=data["quantity"],
                                             reason=data["reason"] or "received in back office",
                                             reference_id=data["reference_id"], actor=actor)
                reference = f" ({data['reference_id']})" if data["reference_id"] else ""
                done = f"{where}: received {data['quantity']}{reference}, on hand {row.on_hand}"
            elif move == "adjust":
                row = services.stock_adjust(product_id=item.product_id,
                                            location_id=item.location_id, delta=data["delta"],
                                            reason=data["reason"],
                                            reference_id=data["reference_id"], actor=actor)
                done = (f"{where}: adjusted {_signed(data['delta'])} ({data['reason']}), "
                        f"on hand {row.on_hand}")
            else:
                target: Location = data["to_location"]
                source, moved = services.stock_transfer(
                    product_id=item.product_id, from_location_id=item.location_id,
                    to_location_id=target.pk, quantity=data["quantity"],
                    reason=data["reason"] or "transferred in back office", actor=actor)
                done = (f"{where}: transferred {data['quantity']} to {target.code}, "
                        f"on hand {source.on_hand} here and {moved.on_hand} at {target.code}")
        except DomainError as exc:
            messages.error(request, f"{where}: not done: {_error_text(exc)}")
            return page
        messages.success(request, done)
        return page

    @admin.action(description="Export selected rows (CSV, re-importable)", permissions=["view"])
    def export_csv(self, request: HttpRequest,
                   queryset: QuerySet[InventoryItem]) -> StreamingHttpResponse:
        return csv_response("inventory.csv", selectors.EXPORT_COLUMNS,
                            selectors.inventory_export_rows(queryset))

    @admin.action(description="Receive stock into the selected rows", permissions=["change"])
    def receive_stock(self, request: HttpRequest,
                      queryset: QuerySet[InventoryItem]) -> HttpResponse | None:
        rows = list(queryset.order_by("id").values("id", "product_id", "location_id",
                                                   "location__code", "sku")[: MAX_ACTION_ROWS + 1])
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
            "submit": "Receive stock",
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
