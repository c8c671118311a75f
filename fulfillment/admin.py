"""Back office for shipments: fast on big tables (joins chosen up front, bounded counts, searches
that hit indexes); statuses change only through ``fulfillment.services``, so the rules hold here
as in the API."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from catalog.models import Product
from fulfillment import selectors, services
from fulfillment.models import Shipment, ShipmentItem
from inventory import selectors as inventory_selectors
from orders import services as orders_services
from orders.admin import OrderAdmin, may_move
from orders.models import Order, OrderItem
from orders.selectors import order_filter
from stateset.admin_site import (
    BoundedCountPaginator,
    Move,
    MovesAdmin,
    ReadOnlyInline,
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
class ShipmentAdmin(MovesAdmin):
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
        return False  # a shipment is created from its order's page ("Create a shipment")

    def move_subject(self, request: HttpRequest, object_id: str) -> Shipment | None:
        return selectors.shipment_page(object_id)

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


def _shipment_done(verb: str) -> Any:
    def done(shipment: Shipment) -> str:
        return (f"{shipment.order.order_number}: shipment {shipment.id} from "
                f"{shipment.location.code} {verb}.")
    return done


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


def _ship(request: HttpRequest, shipment: Shipment, data: dict[str, Any]) -> str:
    services.shipment_ship(shipment_id=shipment.id, actor=admin_actor(request))
    return _shipment_done("shipped")(shipment)


def _deliver(request: HttpRequest, shipment: Shipment, data: dict[str, Any]) -> str:
    services.shipment_deliver(shipment_id=shipment.id, actor=admin_actor(request))
    return _shipment_done("delivered")(shipment)


def _cancel_shipment(request: HttpRequest, shipment: Shipment, data: dict[str, Any]) -> str:
    services.shipment_cancel(shipment_id=shipment.id, reason=data["reason"],
                             actor=admin_actor(request))
    return _shipment_done("cancelled; its units are open again")(shipment)


for _move in (
    Move(name="ship", label="Ship", permission="fulfillment.change_shipment",
         legal=lambda s: Shipment.Status.SHIPPED in services.TRANSITIONS[s.status],
         apply=_ship, rank=10),
    Move(name="deliver", label="Mark delivered", permission="fulfillment.change_shipment",
         legal=lambda s: Shipment.Status.DELIVERED in services.TRANSITIONS[s.status],
         apply=_deliver, rank=20),
    Move(name="cancel", label="Cancel the shipment", permission="fulfillment.change_shipment",
         legal=lambda s: Shipment.Status.CANCELLED in services.TRANSITIONS[s.status],
         apply=_cancel_shipment, form=ReasonForm, rank=90),
):
    ShipmentAdmin.add_move(_move)


# --- the order page's moves that need this app: its status (cancel cancels pending shipments, so
# the API serves /orders/{id}/status here), edits, and new shipments -----------------------------


def _set_status(to_status: str) -> Any:
    def apply(request: HttpRequest, page: dict[str, Any], data: dict[str, Any]) -> str:
        services.order_set_status(order_id=page["id"], to_status=to_status,
                                  reason=data.get("reason", ""), actor=admin_actor(request))
        return f"{page['order_number']}: now {to_status}."
    return apply


def _cancel_order(request: HttpRequest, page: dict[str, Any], data: dict[str, Any]) -> str:
    services.order_cancel(order_id=page["id"], reason=data["reason"], actor=admin_actor(request))
    pending = sum(1 for s in page.get("shipments", []) if s["status"] == Shipment.Status.PENDING)
    return (f"{page['order_number']}: cancelled, its stock released"
            + (f" and {pending} pending shipment(s) cancelled." if pending else "."))


MAX_ADDED_LINES = 3


class OrderEditForm(forms.Form):
    """Each line's new quantity (0 removes it) and up to three new lines; ``clean`` builds the
    edit ``fulfillment.services.order_edit`` takes, as the API's does."""

    reason = forms.CharField(max_length=500, required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, data: Any = None, *, page: dict[str, Any], admin_site: admin.AdminSite,
                 set_prices: bool, prefix: str | None = None) -> None:
        super().__init__(data, prefix=prefix, initial={"version": page["version"]})
        self.items = page["items"]
        self.set_prices = set_prices
        for item in self.items:
            self.fields[f"quantity_{item['id']}"] = forms.IntegerField(
                min_value=0, max_value=services.MAX_QUANTITY, initial=item["quantity"],
                label=f"{item['sku']} — {item['name']}",
                help_text=(f"{item['quantity_fulfilled']} shipped; it may not go below what has "
                           "shipped or sits in a pending shipment. 0 removes the line."))
        widget_field = OrderItem._meta.get_field("product")
        for n in range(MAX_ADDED_LINES):
            self.fields[f"add_{n}_product"] = forms.ModelChoiceField(
                queryset=Product.objects.all(), required=False, label=f"Add a product ({n + 1})",
                widget=AutocompleteSelect(widget_field, admin_site))
            self.fields[f"add_{n}_quantity"] = forms.IntegerField(
                min_value=1, max_value=services.MAX_QUANTITY, required=False, label="quantity")
            if set_prices:
                self.fields[f"add_{n}_unit_price"] = forms.DecimalField(
                    min_value=0, max_digits=14, decimal_places=4, required=False,
                    label="unit price", help_text="Empty: the catalog's price.")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        change: dict[uuid.UUID, int] = {}
        remove: list[uuid.UUID] = []
        for item in self.items:
            quantity = cleaned.get(f"quantity_{item['id']}")
            if quantity == 0:
                remove.append(item["id"])
            elif quantity is not None and quantity != item["quantity"]:
                change[item["id"]] = quantity
        add: list[orders_services.OrderLineInput] = []
        for n in range(MAX_ADDED_LINES):
            product = cleaned.get(f"add_{n}_product")
            quantity = cleaned.get(f"add_{n}_quantity")
            if (product is None) != (quantity is None):
                self.add_error(f"add_{n}_quantity" if product else f"add_{n}_product",
                               "Give both the product and its quantity.")
            elif product is not None and quantity is not None:
                price = cleaned.get(f"add_{n}_unit_price") if self.set_prices else None
                add.append(orders_services.OrderLineInput(quantity=quantity,
                                                          product_id=product.id,
                                                          unit_price=price))
        if not (add or change or remove) and not self.errors:
            raise forms.ValidationError("Change a quantity, remove a line or add one.")
        cleaned["edit"] = {"add": add, "change": change, "remove": remove}
        return cleaned


def _edit(request: HttpRequest, page: dict[str, Any], data: dict[str, Any]) -> str:
    edit = data["edit"]
    services.order_edit(order_id=page["id"], expected_version=data["version"], add=edit["add"],
                        change=edit["change"], remove=edit["remove"], reason=data["reason"],
                        set_prices=request.user.has_perm("orders.set_prices"),
                        actor=admin_actor(request))
    parts = [f"{len(edit[name])} line(s) {done}" for name, done in
             (("change", "changed"), ("remove", "removed"), ("add", "added")) if edit[name]]
    return f"{page['order_number']}: edited — {', '.join(parts)}; totals and stock follow."


class ShipmentCreateForm(forms.Form):
    """The units to ship of each open line (all of them by default), where from and with whom."""

    location = forms.ChoiceField(required=False)
    carrier = forms.CharField(max_length=services.MAX_CARRIER)
    service = forms.CharField(max_length=services.MAX_SERVICE, required=False)
    tracking_number = forms.CharField(max_length=services.MAX_TRACKING, required=False)

    def __init__(self, data: Any = None, *, page: dict[str, Any],
                 prefix: str | None = None) -> None:
        super().__init__(data, prefix=prefix)
        open_units = selectors.open_units(page)
        self.lines = [item for item in page["items"] if open_units[item["id"]] > 0]
        for item in self.lines:
            units = open_units[item["id"]]
            self.fields[f"units_{item['id']}"] = forms.IntegerField(
                min_value=0, max_value=units, initial=units,
                label=f"{item['sku']} — {item['name']}", help_text=f"{units} unit(s) to ship.")
        locations = inventory_selectors.location_list(is_active=True).order_by("priority", "code")
        self.codes = {str(row["id"]): row["code"] for row in locations}
        location = self.fields["location"]
        assert isinstance(location, forms.ChoiceField)
        location.choices = [("", "Where the order's units are reserved"),
                            *self.codes.items()]
        self.order_fields(["location", "carrier", "service", "tracking_number"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        cleaned["items"] = [services.ShipmentLineInput(order_item_id=item["id"], quantity=units)
                            for item in self.lines
                            if (units := cleaned.get(f"units_{item['id']}") or 0) > 0]
        if not cleaned["items"] and not self.errors:
            raise forms.ValidationError("Choose at least one unit to ship.")
        return cleaned


def _create_shipment(request: HttpRequest, page: dict[str, Any], data: dict[str, Any]) -> str:
    created = services.shipment_create(
        order_id=page["id"], items=data["items"],
        location_id=uuid.UUID(data["location"]) if data["location"] else None,
        carrier=data["carrier"], service=data["service"],
        tracking_number=data["tracking_number"] or None, actor=admin_actor(request))
    shipment = created.shipment
    code = inventory_selectors.location_codes([shipment.location_id]).get(shipment.location_id)
    units = sum(item.quantity for item in created.items)
    return (f"{page['order_number']}: shipment {shipment.id} created for {units} unit(s) "
            f"from {code}.")


EDITABLE = frozenset({Order.Status.PENDING, Order.Status.CONFIRMED, Order.Status.PROCESSING,
                      Order.Status.ON_HOLD})
SHIPPABLE = frozenset({Order.Status.PENDING, Order.Status.CONFIRMED, Order.Status.PROCESSING})

OrderAdmin.extend(moves=(
    Move(name="confirm", label="Confirm", permission="orders.change_order",
         legal=lambda page: may_move(page, Order.Status.CONFIRMED),
         apply=_set_status(Order.Status.CONFIRMED), rank=10),
    Move(name="hold", label="Put on hold", permission="orders.change_order",
         legal=lambda page: may_move(page, Order.Status.ON_HOLD),
         apply=_set_status(Order.Status.ON_HOLD), form=ReasonForm, rank=20),
    Move(name="release", label="Release the hold", permission="orders.change_order",
         legal=lambda page: page["status"] == Order.Status.ON_HOLD,
         apply=_set_status(Order.Status.PROCESSING), rank=30),
    Move(name="edit", label="Edit lines", permission="orders.change_order",
         legal=lambda page: page["status"] in EDITABLE, apply=_edit, form=OrderEditForm,
         page=True, rank=40,
         form_kwargs=lambda request, page: {
             "page": page, "admin_site": admin.site,
             "set_prices": request.user.has_perm("orders.set_prices")}),
    Move(name="shipment", label="Create a shipment", permission="fulfillment.add_shipment",
         legal=lambda page: (page["status"] in SHIPPABLE
                             and any(selectors.open_units(page).values())),
         apply=_create_shipment, form=ShipmentCreateForm, page=True, rank=50,
         form_kwargs=lambda request, page: {"page": page}),
    Move(name="cancel", label="Cancel the order", permission="orders.change_order",
         legal=lambda page: may_move(page, Order.Status.CANCELLED), apply=_cancel_order,
         form=ReasonForm, rank=90),
))


@admin.action(
    description="Cancel selected orders (releases their stock, cancels pending shipments)",
    permissions=["change"])
def cancel_orders(model_admin: OrderAdmin, request: HttpRequest, queryset: QuerySet[Order]) -> None:
    run_each(model_admin, request, queryset, lambda pk: services.order_cancel(
        order_id=pk, actor=admin_actor(request), reason="admin action"),
        label="order_number", noun="order(s)", done_as="now cancelled")


OrderAdmin.extend(action=cancel_orders)
