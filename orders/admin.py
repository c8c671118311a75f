"""Back office for orders: fast at a million rows, every change through the services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Min, QuerySet
from django.forms import formset_factory
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from catalog.models import Product
from customers import selectors as customers_selectors
from customers.models import Customer
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
from orders.under_lock import TRANSITIONS
from stateset.admin_site import (
    BoundedCountPaginator,
    Move,
    MovesAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    admin_actor,
    error_text,
    run_each,
)
from stateset.csvio import csv_response
from stateset.errors import DomainError
from stateset.money import money_str

MAX_QUANTITY = 10_000


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


# --- draft orders: staff take an order for a customer (SPEC §5) ----------------------------------


class DraftOrderForm(forms.Form):
    shipping_method = forms.CharField(max_length=100, required=False)
    shipping_amount = forms.DecimalField(min_value=Decimal(0), max_digits=14, decimal_places=4,
                                         required=False)
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000,
                            required=False)

    def __init__(self, *args: Any, admin_site: admin.AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"] = forms.ModelChoiceField(
            queryset=Customer.objects.all(),
            widget=AutocompleteSelect(Order._meta.get_field("customer"), admin_site),
            help_text="Search by email or name. The customer's default addresses are used.")
        self.order_fields(["customer"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if (cleaned.get("shipping_amount") is not None) != bool(cleaned.get("shipping_method")):
            raise forms.ValidationError("Give both a shipping method and its amount, or neither.")
        return cleaned


class DraftLineForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY)
    unit_price = forms.DecimalField(min_value=Decimal(0), max_digits=14, decimal_places=4,
                                    required=False,
                                    help_text="Empty: the catalog's price.")

    def __init__(self, *args: Any, admin_site: admin.AdminSite, set_prices: bool,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product"] = forms.ModelChoiceField(
            queryset=Product.objects.all(),
            widget=AutocompleteSelect(OrderItem._meta.get_field("product"), admin_site))
        self.order_fields(["product"])
        if not set_prices:  # prices come from the catalog (orders.set_prices may set them)
            del self.fields["unit_price"]


DraftLineFormSet = formset_factory(DraftLineForm, extra=5, min_num=1, validate_min=True,
                                   max_num=services.MAX_LINES, validate_max=True)


def _address(customer: Customer, kind: str) -> dict[str, Any] | None:
    address = customers_selectors.address_default(customer_id=customer.id, kind=kind)
    return customers_selectors.address_snapshot(address) if address else None


# --- the order page's own moves (apps above orders add theirs with OrderAdmin.extend) ----------


class PaymentForm(forms.Form):
    act = forms.ChoiceField(choices=[(act, act) for act in services.PAYMENT_ACTS])
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=14, decimal_places=4,
                                required=False, help_text="Empty: the most the act allows.")
    provider = forms.CharField(max_length=64, required=False)
    reference = forms.CharField(max_length=255, required=False,
                                help_text="The payment provider's reference.")
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, data: Any = None, *, version: int, prefix: str | None = None) -> None:
        super().__init__(data, prefix=prefix, initial={"version": version})


def _record_payment(request: HttpRequest, page: dict[str, Any], data: dict[str, Any]) -> str:
    payment, order = services.payment_record(
        order_id=page["id"], act=data["act"], amount=data["amount"], provider=data["provider"],
        reference=data["reference"], actor=admin_actor(request),
        expected_version=data["version"])
    return (f"{page['order_number']}: {payment.kind} of "
            f"{money_str(payment.amount, payment.currency)} {payment.currency} recorded; "
            f"payment status {order.payment_status}.")


RECORD_PAYMENT = Move(
    name="payment", label="Record a payment", permission="orders.record_payment",
    legal=lambda page: page["status"] != Order.Status.REFUNDED,
    apply=_record_payment, form=PaymentForm, page=True, rank=60,
    form_kwargs=lambda request, page: {"version": page["version"]})


def may_move(page: dict[str, Any], to_status: str) -> bool:
    """Whether the order's machine allows ``to_status`` from the page's status now."""
    return to_status in TRANSITIONS.get(page["status"], frozenset())


class ChannelFilter(admin.SimpleListFilter):
    """The channel filter, its choices from an index (``selectors.order_channels``), not from a
    ``SELECT DISTINCT`` over every order."""

    title = "channel"
    parameter_name = "channel"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(channel, channel) for channel in selectors.order_channels()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        value = self.value()
        return queryset.filter(channel=value) if value else queryset


@admin.register(Order)
class OrderAdmin(MovesAdmin):
    list_display = ("order_number", "customer_email", "status", "payment_status",
                    "fulfillment_status", "total_amount", "currency", "created_at")
    list_filter = ("status", "payment_status", "fulfillment_status", ChannelFilter)
    list_select_related = ("customer",)
    search_fields = ("order_number",)  # see get_search_results: number or email, both indexed
    search_help_text = "An order number (ORD-000123) or a customer's email."
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = BoundedCountPaginator
    list_per_page = 50
    ordering = ("-created_at", "-id")
    # The page shows the order's numbers, lines, payments, shipments, returns and timeline from
    # one read (selectors.order_page), above the buttons' forms; the form below keeps the notes.
    change_form_template = "admin/orders/order/change_form.html"
    inlines: ClassVar[tuple[type[ReadOnlyInline], ...]] = ()
    # What lives only inside an order, shown on its page (not as inlines: see above).
    shown_on_page: ClassVar[tuple[type[Any], ...]] = (OrderItem, ShippingLine, Payment)
    # Apps above orders add their moves (shipments, returns, cancel, edit) and actions with
    # ``extend``, so orders never imports them.
    moves = {RECORD_PAYMENT.name: RECORD_PAYMENT}
    actions: list[Any] = ["confirm_orders", "mark_paid", "export_csv", "export_csv_with_items"]
    fields = ("notes", "channel", "external_id", "metadata", "version", "created_at",
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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_record_payment_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.record_payment")

    def move_subject(self, request: HttpRequest, object_id: str) -> dict[str, Any] | None:
        return selectors.order_page(object_id)

    def subject_label(self, subject: dict[str, Any]) -> str:
        return str(subject["order_number"])

    def save_model(self, request: HttpRequest, obj: Order, form: Any, change: bool) -> None:
        if "notes" in form.changed_data:
            services.order_update(order_id=obj.id, changes={"notes": obj.notes},
                                  actor=admin_actor(request))

    def add_view(self, request: HttpRequest, form_url: str = "",
                 extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """A draft order: staff take an order for a customer through ``order_create``, as the API
        does (catalog prices unless the user holds ``orders.set_prices``; stock reserved)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        set_prices = request.user.has_perm("orders.set_prices")
        data = request.POST if request.method == "POST" else None
        form = DraftOrderForm(data, admin_site=self.admin_site)
        lines = DraftLineFormSet(data, prefix="lines",
                                 form_kwargs={"admin_site": self.admin_site,
                                              "set_prices": set_prices})
        if data is not None and form.is_valid() and lines.is_valid():
            customer = form.cleaned_data["customer"]
            method = form.cleaned_data["shipping_method"]
            try:
                created = services.order_create(
                    customer_id=customer.id,
                    items=[services.OrderLineInput(
                        product_id=line["product"].id, quantity=line["quantity"],
                        unit_price=line.get("unit_price") if set_prices else None)
                        for line in lines.cleaned_data if line],
                    shipping_lines=[services.ShippingLineInput(
                        method=method, amount=form.cleaned_data["shipping_amount"])]
                    if method else [],
                    channel="admin", set_prices=set_prices,
                    shipping_address=_address(customer, "shipping"),
                    billing_address=_address(customer, "billing"),
                    notes=form.cleaned_data["notes"], actor=admin_actor(request))
            except DomainError as exc:
                self.message_user(request, f"Not created: {error_text(exc)}", messages.ERROR)
            else:
                order = created.order
                units = sum(item.quantity for item in created.items)
                waiting = sum(created.backordered.values())
                self.message_user(request, (
                    f"{order.order_number}: created for {customer.email}, {units} unit(s), "
                    f"total {money_str(order.total_amount, order.currency)} {order.currency}; "
                    "stock reserved" + (f" ({waiting} unit(s) backordered)." if waiting else ".")),
                    messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:orders_order_change",
                                                    args=[order.id],
                                                    current_app=self.admin_site.name))
        context = {**self.admin_site.each_context(request), "title": "Add order (draft)",
                   "opts": self.model._meta, "form": form, "lines": lines,
                   "set_prices": set_prices, "has_view_permission": True,
                   "media": self.media + form.media + lines.media}
        return TemplateResponse(request, "admin/orders/order/draft.html", context)

    def _transition(self, request: HttpRequest, queryset: QuerySet[Order], to_status: str) -> None:
        run_each(self, request, queryset, lambda pk: services.order_transition(
            order_id=pk, to_status=to_status, actor=admin_actor(request), reason="admin action"),
            label="order_number", noun="order(s)", done_as=f"now {to_status}")

    @admin.action(description="Confirm selected orders", permissions=["change"])
    def confirm_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._transition(request, queryset, Order.Status.CONFIRMED)

    @admin.action(description="Record payment received for selected orders",
                  permissions=["record_payment"])
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
    def extend(cls, *, inline: type[ReadOnlyInline] | None = None, action: Any = None,
               moves: tuple[Move, ...] = ()) -> None:
        """For an app above orders: show ``inline`` on the order page, offer ``action`` on the
        changelist and ``moves`` as buttons on the order page (each sees ``order_page``)."""
        if inline is not None:
            cls.inlines = (*cls.inlines, inline)
        if action is not None:
            cls.actions = [*cls.actions, action]
        for move in moves:
            cls.add_move(move)


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
