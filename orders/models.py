"""Orders, their items and their timeline (SPEC §4.4).

``orders_order`` and ``orders_orderevent`` are range-partitioned by month on ``created_at``
(docs/partitioning.md): the physical primary key is ``(id, created_at)`` and children carry the
order's ``created_at`` so the database enforces their reference with a composite foreign key.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Func, Q
from django.utils import timezone


class NextOrderNumber(Func):
    """``ORD-000123`` from a sequence: unique across partitions by construction (SQL function in
    migration 0001; it never truncates past six digits)."""

    function = "orders_next_number"
    arity = 0

    def __init__(self) -> None:
        super().__init__(output_field=models.CharField())


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"
        PROCESSING = "processing"
        ON_HOLD = "on_hold"
        SHIPPED = "shipped"
        DELIVERED = "delivered"
        CANCELLED = "cancelled"
        REFUNDED = "refunded"

    class PaymentStatus(models.TextChoices):
        PENDING = "pending"
        AUTHORIZED = "authorized"
        PAID = "paid"
        REFUNDED = "refunded"
        PARTIALLY_REFUNDED = "partially_refunded"

    class FulfillmentStatus(models.TextChoices):
        UNFULFILLED = "unfulfilled"
        PARTIALLY_FULFILLED = "partially_fulfilled"
        FULFILLED = "fulfilled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    order_number = models.CharField(max_length=32, db_default=NextOrderNumber(), editable=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT,
                                 related_name="orders", db_index=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    payment_status = models.CharField(max_length=24, choices=PaymentStatus.choices,
                                      default=PaymentStatus.PENDING)
    fulfillment_status = models.CharField(max_length=24, choices=FulfillmentStatus.choices,
                                          default=FulfillmentStatus.UNFULFILLED)
    currency = models.CharField(max_length=3, default="USD")
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    tax_total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    shipping_total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    discount_total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    shipping_address = models.JSONField(null=True, blank=True)
    billing_address = models.JSONField(null=True, blank=True)
    notes = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Lists sort by (created_at DESC, id DESC): keyset pagination and partition pruning
            # together.
            models.Index(F("created_at").desc(), F("id").desc(), name="order_created_idx"),
            models.Index(F("status"), F("created_at").desc(), name="order_status_created_idx"),
            models.Index(F("customer"), F("created_at").desc(), name="order_customer_created_idx"),
            models.Index(fields=["order_number"], name="order_number_idx"),
            models.Index(F("total_amount").desc(), F("id").desc(), name="order_total_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total_amount__gte=0),
                                   name="order_total_non_negative"),
            models.CheckConstraint(condition=Q(subtotal__gte=0),
                                   name="order_subtotal_non_negative"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"),
                                   name="order_currency_iso"),
        ]

    def __str__(self) -> str:
        return self.order_number or str(self.id)


class OrderItem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The real constraint is (order_id, order_created_at) → orders_order(id, created_at), added by
    # the migration; Django cannot express a foreign key to a composite key.
    order = models.ForeignKey(Order, on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="items")
    order_created_at = models.DateTimeField(editable=False)
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT,
                                related_name="order_items")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    total_price = models.DecimalField(max_digits=14, decimal_places=2)
    quantity_fulfilled = models.PositiveIntegerField(default=0)
    quantity_returned = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order_id", "sku", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0),
                                   name="order_item_quantity_positive"),
            models.CheckConstraint(condition=Q(quantity_fulfilled__lte=F("quantity")),
                                   name="order_item_fulfilled_le_quantity"),
            models.CheckConstraint(condition=Q(quantity_returned__lte=F("quantity_fulfilled")),
                                   name="order_item_returned_le_fulfilled"),
            models.CheckConstraint(condition=Q(unit_price__gte=0),
                                   name="order_item_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku}"


class OrderEvent(models.Model):
    """The order's timeline; append-only."""

    class Kind(models.TextChoices):
        CREATED = "created"
        STATUS_CHANGED = "status_changed"
        RESERVED = "reserved"
        RELEASED = "released"
        SHIPMENT_CREATED = "shipment_created"
        SHIPPED = "shipped"
        DELIVERED = "delivered"
        RETURN_REQUESTED = "return_requested"
        REFUNDED = "refunded"
        NOTE = "note"
        UPDATED = "updated"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    order = models.ForeignKey(Order, on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="events", db_index=False)
    order_created_at = models.DateTimeField(editable=False)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, blank=True, default="")
    message = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "created_at"], name="order_event_order_idx")]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.created_at:%Y-%m-%d %H:%M}"
