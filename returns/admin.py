"""Back office for returns: fast changelist (joins chosen up front, bounded counts, indexed filters
and searches), read-only rows, and actions that call the same services as the API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from inventory import selectors as inventory_selectors
from orders.admin import OrderAdmin
from orders.models import Order
from returns import selectors, services
from returns.models import Return, ReturnItem
from stateset.admin_site import (
    BoundedCountPaginator,
    Move,
    MovesAdmin,
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
class ReturnAdmin(MovesAdmin):
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
        return False  # a return is requested from its order's page ("Create a return")

    def has_receive_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("returns.receive_return")

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("returns.refund_return")

    def move_subject(self, request: HttpRequest, object_id: str) -> dict[str, Any] | None:
        return selectors.return_page(object_id)

    def subject_label(self, subject: dict[str, Any]) -> str:
        return str(subject["rma"])

    def subject_state(self, subject: dict[str, Any]) -> str:
        return f"it is {subject['rma'].status}"

    def save_model(self, request: HttpRequest, obj: Return, form: Any, change: bool) -> None:
        pass  # the services own every field: the page changes a return through its moves

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
                  permissions=["receive"])
    def receive_returns(self, request: HttpRequest, queryset: QuerySet[Return]) -> None:
        self._apply(request, queryset, services.return_receive, "received")

    @admin.action(description="Refund selected returns", permissions=["refund"])
    def refund_returns(self, request: HttpRequest, queryset: QuerySet[Return]) -> None:
        self._apply(request, queryset, services.return_refund, "refunded")


@admin.register(ReturnItem)
class ReturnItemAdmin(ReadOnlyAdmin):
    """Return lines across returns, read-only (they change through the return's services)."""

    list_display = ("rma", "order_item", "quantity", "condition", "restock", "location")
    list_select_related = ("rma", "order_item", "location")
    ordering = ("-id",)


# --- the return page's moves ---------------------------------------------------------------------


class NoteForm(forms.Form):
    note = forms.CharField(max_length=services.MAX_REASON, required=False)


def _status_move(verb: str, done_as: str) -> Callable[[HttpRequest, dict[str, Any],
                                                       dict[str, Any]], str]:
    def apply(request: HttpRequest, page: dict[str, Any], data: dict[str, Any]) -> str:
        rma = services.ACTIONS[verb](return_id=page["id"], note=data.get("note", ""),
                                     actor=admin_actor(request))
        refund = (f" ({rma.refund_amount} {rma.currency})"
                  if verb == "refund" and rma.refund_amount is not None else "")
        return f"{page['rma'].order.order_number}: {rma.rma_number} {done_as}{refund}."
    return apply


def _may(to_status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda page: to_status in services.TRANSITIONS[page["rma"].status]


class ReceiveForm(forms.Form):
    """What the warehouse found, per line: its condition, whether it goes back on the shelf, and
    where (empty: where it shipped from)."""

    note = forms.CharField(max_length=services.MAX_REASON, required=False)

    def __init__(self, data: Any = None, *, page: dict[str, Any],
                 prefix: str | None = None) -> None:
        super().__init__(data, prefix=prefix)
        self.lines: list[ReturnItem] = page["items"]
        locations = inventory_selectors.location_list(is_active=True).order_by("priority", "code")
        choices = [("", "Where it shipped from"),
                   *((str(row["id"]), row["code"]) for row in locations)]
        for line in self.lines:
            name = f"{line.quantity} × {line.order_item.sku}"
            self.fields[f"condition_{line.id}"] = forms.ChoiceField(
                choices=ReturnItem.Condition.choices, initial=line.condition,
                label=f"{name}: condition")
            self.fields[f"restock_{line.id}"] = forms.BooleanField(
                required=False, initial=line.restock, label=f"{name}: back on the shelf",
                help_text="Resellable units only.")
            self.fields[f"location_{line.id}"] = forms.ChoiceField(
                choices=choices, required=False,
                initial=str(line.location_id) if line.location_id else "",
                label=f"{name}: location")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        cleaned["found"] = [
            services.ReceiveLineInput(
                return_item_id=line.id,
                condition=cleaned.get(f"condition_{line.id}") or line.condition,
                restock=bool(cleaned.get(f"restock_{line.id}")),
                location_id=(uuid.UUID(cleaned[f"location_{line.id}"])
                             if cleaned.get(f"location_{line.id}") else None))
            for line in self.lines]
        return cleaned


def _receive(request: HttpRequest, page: dict[str, Any], data: dict[str, Any]) -> str:
    rma = services.return_receive(return_id=page["id"], note=data["note"], found=data["found"],
                                  actor=admin_actor(request))
    back = sum(line.quantity for line in page["items"]
               if any(f.return_item_id == line.id and f.restock
                      and f.condition == ReturnItem.Condition.RESELLABLE for f in data["found"]))
    return (f"{page['rma'].order.order_number}: {rma.rma_number} received; {back} unit(s) "
            "back on hand.")


for _move in (
    Move(name="approve", label="Approve", permission="returns.change_return",
         legal=_may(Return.Status.APPROVED), apply=_status_move("approve", "approved"),
         form=NoteForm, rank=10),
    Move(name="reject", label="Reject", permission="returns.change_return",
         legal=_may(Return.Status.REJECTED), apply=_status_move("reject", "rejected"),
         form=NoteForm, rank=20),
    Move(name="receive", label="Receive", permission="returns.receive_return",
         legal=_may(Return.Status.RECEIVED), apply=_receive, form=ReceiveForm, page=True,
         rank=30, form_kwargs=lambda request, page: {"page": page}),
    Move(name="refund", label="Refund", permission="returns.refund_return",
         legal=_may(Return.Status.REFUNDED), apply=_status_move("refund", "refunded"), rank=40),
    Move(name="close", label="Close", permission="returns.change_return",
         legal=_may(Return.Status.CLOSED), apply=_status_move("close", "closed"), rank=50),
    Move(name="cancel", label="Cancel the return", permission="returns.change_return",
         legal=_may(Return.Status.CANCELLED), apply=_status_move("cancel", "cancelled"),
         form=NoteForm, rank=90),
):
    ReturnAdmin.add_move(_move)


# --- the order page's move that needs this app: a new return -------------------------------------


class ReturnCreateForm(forms.Form):
    """Per shipped line, how many units come back in each condition (one order line may come
    back in several: 1 resellable, 1 damaged), whether resellable ones go back on the shelf, and
    where."""

    reason = forms.CharField(max_length=services.MAX_REASON, required=False)
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                            max_length=services.MAX_NOTES, required=False)

    def __init__(self, data: Any = None, *, page: dict[str, Any],
                 prefix: str | None = None) -> None:
        super().__init__(data, prefix=prefix)
        returnable = selectors.returnable_units(page)
        self.lines = [item for item in page["items"] if returnable[item["id"]] > 0]
        locations = inventory_selectors.location_list(is_active=True).order_by("priority", "code")
        choices = [("", "Where it shipped from"),
                   *((str(row["id"]), row["code"]) for row in locations)]
        for item in self.lines:
            units = returnable[item["id"]]
            name = f"{item['sku']} — {item['name']}"
            for condition, label in ReturnItem.Condition.choices:
                self.fields[f"{condition}_{item['id']}"] = forms.IntegerField(
                    min_value=0, max_value=units, initial=0, label=f"{name}: {label}",
                    help_text=f"{units} unit(s) returnable." if condition == "resellable"
                    else "")
            self.fields[f"restock_{item['id']}"] = forms.BooleanField(
                required=False, initial=True, label=f"{name}: resellable units back on the shelf")
            self.fields[f"location_{item['id']}"] = forms.ChoiceField(
                choices=choices, required=False, label=f"{name}: location")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        items = []
        for item in self.lines:
            location = cleaned.get(f"location_{item['id']}")
            for condition in ReturnItem.Condition.values:
                units = cleaned.get(f"{condition}_{item['id']}") or 0
                if units:
                    items.append(services.ReturnLineInput(
                        order_item_id=item["id"], quantity=units, condition=condition,
                        restock=bool(cleaned.get(f"restock_{item['id']}")),
                        location_id=uuid.UUID(location) if location else None))
        if not items and not self.errors:
            raise forms.ValidationError("Give at least one unit to return.")
        cleaned["items"] = items
        return cleaned


def _create_return(request: HttpRequest, page: dict[str, Any], data: dict[str, Any]) -> str:
    created = services.return_create(order_id=page["id"], items=data["items"],
                                     reason=data["reason"], notes=data["notes"],
                                     actor=admin_actor(request))
    units = sum(line.quantity for line in created.items)
    return f"{page['order_number']}: return {created.rma.rma_number} requested for {units} unit(s)."


OrderAdmin.extend(moves=(
    Move(name="return", label="Create a return", permission="returns.add_return",
         legal=lambda page: any(selectors.returnable_units(page).values()),
         apply=_create_return, form=ReturnCreateForm, page=True, rank=70,
         form_kwargs=lambda request, page: {"page": page}),
))
