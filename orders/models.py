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


def Money(**kwargs: object) -> models.DecimalField:  # noqa: N802 - a field, read like a class
    """An amount column: 16 digits, 3 decimals (rounded to the currency's own digits on write)."""
    return models.DecimalField(max_digits=16, decimal_places=3, **kwargs)  # type: ignore[arg-type]  # kwargs are DecimalField options


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
        """Derived from the order's payments (SPEC §4.4.2), stored for filtering."""

        PENDING = "pending"
        AUTHORIZED = "authorized"
        PARTIALLY_PAID = "partially_paid"
        PAID = "paid"
        PARTIALLY_REFUNDED = "partially_refunded"
        REFUNDED = "refunded"

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
    # Amounts are rounded to the currency's minor unit (stateset.money); three decimals fit KWD.
    subtotal = Money(default=0)
    tax_total = Money(default=0)
    shipping_total = Money(default=0)
    discount_total = Money(default=0)
    total_amount = Money(default=0)
    # New columns carry database defaults too, so bulk loaders (COPY) may leave them out.
    taxes_included = models.BooleanField(default=False, db_default=False,
                                         help_text="Prices included tax when priced.")
    taxes_sent = models.BooleanField(default=False, db_default=False,
                                     help_text="The channel sent the taxes.")
    discounts = models.JSONField(default=list, db_default=[], blank=True,
                                 help_text="The order discounts as sent.")
    channel = models.CharField(max_length=32, default="api", db_default="api")
    external_id = models.CharField(max_length=128, blank=True, default="", db_default="",
                                   help_text="The channel's own order id; unique per channel.")
    shipping_address = models.JSONField(null=True, blank=True)
    billing_address = models.JSONField(null=True, blank=True)
    notes = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("record_payment", "Can record a payment"),
            ("set_prices", "Can set prices on a draft order"),
        ]
        indexes = [
            # Lists sort by (created_at DESC, id DESC): keyset pagination and partition pruning
            # together.
            models.Index(F("created_at").desc(), F("id").desc(), name="order_created_idx"),
            models.Index(F("status"), F("created_at").desc(), name="order_status_created_idx"),
            models.Index(F("customer"), F("created_at").desc(), name="order_customer_created_idx"),
            models.Index(fields=["order_number"], name="order_number_idx"),
            models.Index(F("total_amount").desc(), F("id").desc(), name="order_total_idx"),
            models.Index(fields=["order_number"], name="order_number_prefix_idx",
                         opclasses=["varchar_pattern_ops"]),
            models.Index(F("channel"), F("created_at").desc(), name="order_channel_created_idx"),
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
    unit_price = Money()
    list_price = Money(null=True, blank=True,
                       help_text="The catalog's price (null when priced in another currency).")
    total_price = Money(help_text="unit_price × quantity")
    line_discount = Money(default=0, db_default=0,
                          help_text="Its own discount, as sent (edits spread the order's again).")
    discount_total = Money(default=0, db_default=0,
                           help_text="Its own discount plus its share of the order's.")
    net_total = Money(default=0, help_text="total_price − discount_total")
    tax_total = Money(default=0, db_default=0)
    taxes = models.JSONField(default=list, db_default=[], blank=True)
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
            models.CheckConstraint(
                condition=Q(discount_total__gte=0) & Q(discount_total__lte=F("total_price")),
                                   name="order_item_discount_within_total"),
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
        EDITED = "edited"
        BACKORDER_ALLOCATED = "backorder_allocated"
        PAYMENT = "payment"

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
        indexes = [models.Index(fields=["order", "created_at"], name="order_event_order_idx"),
                   # the back office's timeline list, newest first, keyset-friendly
                   models.Index(F("created_at").desc(), F("id").desc(),
                                name="order_event_created_idx")]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.created_at:%Y-%m-%d %H:%M}"


class ShippingLine(models.Model):
    """A shipping charge of an order (SPEC §4.4.1), priced and taxed with it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="shipping_lines")
    order_created_at = models.DateTimeField(editable=False)
    method = models.CharField(max_length=100)
    amount = Money()
    tax_total = Money(default=0)
    taxes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["order_id", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0),
                                              name="shipping_line_amount_non_negative")]

    def __str__(self) -> str:
        return f"{self.method}: {self.amount}"


class Payment(models.Model):
    """What a payment provider did for an order (SPEC §4.4.2): append-only;
    ``orders.payment_status`` is derived from these rows under the order lock."""

    class Kind(models.TextChoices):
        AUTHORIZATION = "authorization"
        CAPTURE = "capture"
        REFUND = "refund"
        VOID = "void"

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="payments", db_index=False)
    order_created_at = models.DateTimeField(editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = Money()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUCCEEDED)
    provider = models.CharField(max_length=64, blank=True, default="")
    reference = models.CharField(max_length=255, blank=True, default="")
    actor = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "created_at"], name="payment_order_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_non_negative"),
            models.CheckConstraint(
                condition=Q(kind__in=["authorization", "capture", "refund", "void"]),
                                   name="payment_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} ({self.status})"


class ChannelOrder(models.Model):
    """The unique ``(channel, external_id)`` of a channel's order. ``orders_order`` is partitioned
    by ``created_at`` and PostgreSQL requires a unique constraint there to include the partition
    key, which would not stop two months holding the same pair; this plain table holds the
    constraint instead, written in the order's own transaction (docs/decisions.md)."""

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=32)
    external_id = models.CharField(max_length=128)
    order = models.ForeignKey(Order, on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="+")
    order_created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "external_id"],
                                               name="channel_order_uniq")]
        indexes = [models.Index(fields=["external_id"], name="channel_order_external_idx")]

    def __str__(self) -> str:
        return f"{self.channel}:{self.external_id}"


class OrderDay(models.Model):
    """The daily rollup the back office's dashboard reads (SPEC §5): per UTC day of creation,
    currency and current status, how many orders and their total. Maintained outside the order
    write path (``orders.rollups``: a Celery beat task recomputes the last days every minute and
    the last weeks every hour; ``manage.py orders_rollup`` backfills), so ``POST /orders`` pays
    nothing for it; a figure is at most a minute old for today and yesterday, an hour before."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Order.Status.choices)
    orders = models.PositiveIntegerField()
    revenue = Money()
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "currency", "status"],
                                               name="order_day_uniq")]

    def __str__(self) -> str:
        return f"{self.day} {self.currency} {self.status}: {self.orders}"
