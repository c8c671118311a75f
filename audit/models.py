"""The audit trail (SPEC §5): one event table per audited model, written by PostgreSQL triggers
(django-pghistory on django-pgtrigger), so every write is seen — a service's ``save()``, a bulk
``update()``, an ``F()`` counter, raw SQL — with who made it (``pgh_context``, set by
``audit.context``) and, on an update, what changed (``pgh_diff``: ``{"column": [old, new]}``).

The triggers are declared here, on the other apps' models, and installed by ``audit.triggers``
(the audit's own migration, and again after every ``migrate``), not by migrations of the audited
apps: their migration folders stay untouched, and a change to a tracked field list is picked up by
the next migrate.

Never copied: API keys' hashes (``key_hash``, ``previous_key_hash``) and webhook endpoints' secrets
(``secret``, ``previous_secret``) — not in the snapshot, not in the diff; nor an endpoint's
``consecutive_failures``, a counter of every failed delivery. ``last_used_at`` of a key is not
tracked (it is touched at most once a minute per key and is no one's change).
"""

from __future__ import annotations

from typing import Any

import pghistory
import pgtrigger
from django.db import models
from pghistory import trigger as pghistory_trigger

from catalog.models import Product
from customers.models import Address, Customer
from fulfillment.models import Shipment
from inventory.models import InventoryItem, Location
from orders.models import Order, OrderItem, Payment
from returns.models import Return
from stateset.models import ApiKey
from webhooks.models import Endpoint


class AuditEvent(pghistory.models.Event):
    """Columns every event table has besides the tracked model's: ``pgh_diff`` on updates."""

    pgh_diff = models.JSONField(null=True, help_text='{"column": [old, new]} for an update.')

    class Meta:
        abstract = True


def _diff_sql(columns: list[tuple[str, bool]]) -> str:
    """``{"col": [old, new]}`` for each column the update changed; decimals as strings (money stays
    exact in JSON). No braces: pgtrigger formats the function body with ``str.format``."""
    def value(row: str, col: str, as_text: bool) -> str:
        return f'to_jsonb({row}."{col}"::text)' if as_text else f'to_jsonb({row}."{col}")'

    parts = [f"CASE WHEN OLD.\"{col}\" IS DISTINCT FROM NEW.\"{col}\" THEN jsonb_build_object("
             f"'{col}', jsonb_build_array({value('OLD', col, text)}, {value('NEW', col, text)})) "
             "ELSE jsonb_build_object() END" for col, text in columns]
    return "(" + " || ".join(["jsonb_build_object()", *parts]) + ")"


class _DiffTrigger(pghistory_trigger.Event):
    """pghistory's event trigger, with ``pgh_diff`` added to the row it inserts."""

    def get_func(self, model: models.Model) -> pgtrigger.Func:
        func = super().get_func(model)
        event_model: Any = self.event_model
        tracked = {f.name for f in event_model.pgh_tracked_model._meta.fields}
        columns = [(f.column, isinstance(f, models.DecimalField))
                   for f in event_model._meta.fields
                   if f.name in tracked and f.concrete and not f.name.startswith("pgh_")
                   and f.name not in ("version", "updated_at")]
        sql: str = func.func
        head, sep, tail = sql.partition(") VALUES (")
        values, sep2, rest = tail.rpartition("); RETURN NULL;")
        assert sep and sep2, "pghistory's event function changed shape"
        return pgtrigger.Func(f'{head}, "pgh_diff"{sep}{values}, {_diff_sql(columns)}{sep2}{rest}')


class Changed(pghistory.UpdateEvent):
    """An update of any of ``fields`` (all tracked fields by default): the new row and the diff."""

    label = "update"

    def __init__(self, *fields: str) -> None:
        condition = pgtrigger.AnyChange(*fields) if fields else pgtrigger.AnyChange()
        super().__init__(condition=condition)

    def add_event_trigger(self, event_model: Any) -> None:
        pgtrigger.register(_DiffTrigger(
            event_model=event_model, label=self.label, name=self.trigger_name, row=self.row,
            operation=self.operation, condition=self.condition, level=self.level,
        ))(event_model.pgh_tracked_model)


def _event_model(tracked: type[models.Model], name: str, *trackers: Any,
                 fields: list[str]) -> Any:
    return pghistory.create_event_model(
        tracked, *trackers, fields=fields, app_label="audit", model_name=name,
        base_model=AuditEvent, abstract=False,
        context_field=pghistory.ContextJSONField(), context_id_field=pghistory.ContextUUIDField(),
        obj_field=pghistory.ObjForeignKey(related_name="+", related_query_name="+"),
        meta={"ordering": ["-pgh_id"]},
    )


# Always audited (SPEC §5): prices, stock counts, API keys, webhook endpoints — created, changed,
# deleted.
ProductEvent = _event_model(
    Product, "ProductEvent", pghistory.InsertEvent(), Changed(), pghistory.DeleteEvent(),
    fields=["sku", "name", "description", "price", "currency", "allow_backorder", "is_active",
            "attributes", "version"])
# Stock counts: on hand and the thresholds. A reservation changes only ``reserved`` and is not an
# event here (it has its own rows and ledger, and it is on the order-create hot path).
InventoryItemEvent = _event_model(
    InventoryItem, "InventoryItemEvent", pghistory.InsertEvent(),
    Changed("on_hand", "reorder_point", "safety_stock", "allow_backorder"),
    pghistory.DeleteEvent(),
    fields=["product", "location", "sku", "on_hand", "reserved", "reorder_point", "safety_stock",
            "allow_backorder", "version"])
ApiKeyEvent = _event_model(
    ApiKey, "ApiKeyEvent", pghistory.InsertEvent(), Changed(), pghistory.DeleteEvent(),
    fields=["name", "prefix", "scopes", "rate_limit", "expires_at", "revoked_at", "rotated_at",
            "previous_expires_at", "hash_scheme", "created_by"])
EndpointEvent = _event_model(
    Endpoint, "EndpointEvent", pghistory.InsertEvent(), Changed(), pghistory.DeleteEvent(),
    fields=["url", "events", "description", "is_active", "disabled_at", "disabled_reason",
            "version"])

# Status and field changes. Orders and customers are created on the order-create hot path, so
# their creation is not an event (the row itself and the order timeline say when and how).
# ``orders_order`` is partitioned: the trigger is declared on the parent and PostgreSQL (≥ 13)
# clones it onto every partition, present and future.
OrderEvent = _event_model(
    Order, "OrderEvent",
    Changed("status", "payment_status", "fulfillment_status", "customer", "shipping_address",
            "billing_address", "notes", "metadata", "total_amount"),
    fields=["order_number", "status", "payment_status", "fulfillment_status", "customer",
            "currency", "total_amount", "shipping_address", "billing_address", "notes",
            "metadata", "version"])
CustomerEvent = _event_model(
    Customer, "CustomerEvent", Changed(), pghistory.DeleteEvent(),
    fields=["email", "first_name", "last_name", "phone", "metadata", "version"])
ShipmentEvent = _event_model(
    Shipment, "ShipmentEvent", pghistory.InsertEvent(), Changed(),
    fields=["order", "location", "carrier", "service", "tracking_number", "status", "version"])
ReturnEvent = _event_model(
    Return, "ReturnEvent", pghistory.InsertEvent(), Changed(),
    fields=["rma_number", "order", "status", "reason", "refund_amount", "currency", "notes",
            "version"])
# Where stock is and who gets it: locations, customers' addresses, created, changed, deleted.
LocationEvent = _event_model(
    Location, "LocationEvent", pghistory.InsertEvent(), Changed(), pghistory.DeleteEvent(),
    fields=["code", "name", "address", "is_active", "priority", "version"])
AddressEvent = _event_model(
    Address, "AddressEvent", pghistory.InsertEvent(), Changed(), pghistory.DeleteEvent(),
    fields=["customer", "kind", "name", "line1", "line2", "city", "region", "postal_code",
            "country", "phone", "is_default", "version"])
# Money on an order: payments are append-only rows, recorded by a move of their own (SPEC §4.4.2);
# an order line's quantity and prices change only by an edit (SPEC §4.4.3), which also removes
# lines. A line written with its order (the hot path) or added by an edit is no event of its own:
# the edit's changed totals are on the order's trail and in its ``edited`` timeline entry.
PaymentEvent = _event_model(
    Payment, "PaymentEvent", pghistory.InsertEvent(), Changed(),
    fields=["order", "kind", "amount", "currency", "status", "provider", "reference"])
OrderItemEvent = _event_model(
    OrderItem, "OrderItemEvent",
    Changed("quantity", "unit_price", "line_discount", "discount_total", "net_total",
            "tax_total"),
    pghistory.DeleteEvent(),
    fields=["order", "sku", "quantity", "unit_price", "line_discount", "discount_total",
            "net_total", "tax_total", "quantity_fulfilled", "quantity_returned"])
