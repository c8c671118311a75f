"""Tables of the inventory domain (SPEC §4.3): locations, stock per product and location,
reservations, and the append-only ledger of every stock movement.

The database is the last line of defence: CHECK constraints keep ``0 <= reserved <= on_hand``, one
row per (product, location), and ``available`` is computed by PostgreSQL itself. Rows only change
through ``inventory.services``.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest, Upper
from django.utils import timezone

from inventory.ids import uuid7

MAX_QUANTITY = 1_000_000
"""The largest quantity one request may move; larger numbers are a typo or an attack."""


class Location(models.Model):
    """A place stock is held. Reservations without a location pick active locations by ``priority``
    (lower first), then ``code``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=32,
                            help_text="Short unique code, e.g. MAIN (case-insensitive).")
    name = models.CharField(max_length=200)
    address = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    priority = models.IntegerField(default=100, help_text="Lower is picked first when reserving.")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "code"]
        constraints = [
            models.UniqueConstraint(Upper("code"), name="location_code_ci_uniq"),
            models.CheckConstraint(condition=~Q(code=""), name="location_code_not_empty"),
        ]

    def __str__(self) -> str:
        return self.code


class InventoryItem(models.Model):
    """Stock of one product at one location. ``available`` = ``on_hand - reserved`` is a stored
    generated column, so filters and the low-stock index use it directly."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # db_index=False: the guide's named indexes below are the ones we want.
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT,
                                related_name="inventory_items", db_index=False)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="inventory_items",
                                 db_index=False)
    sku = models.CharField(max_length=64,
                           help_text="Copy of the product's SKU, for lookups without a join.")
    on_hand = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)
    available = models.GeneratedField(
        expression=F("on_hand") - F("reserved"), output_field=models.BigIntegerField(),
        db_persist=True
    )
    reorder_point = models.IntegerField(default=0)
    safety_stock = models.IntegerField(default=0,
                                       help_text="Held back from sale: reservations stop above it.")
    sellable = models.GeneratedField(
        expression=Greatest(F("on_hand") - F("reserved") - F("safety_stock"), Value(0)),
        output_field=models.BigIntegerField(), db_persist=True,
        help_text="What reservations, orders and backorder allocation may take: available − safety "
                  "stock.")
    allow_backorder = models.BooleanField(default=False, db_default=False,
                                          help_text="Orders of this product may wait for stock (as "
                                                    "the product's flag).")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "inventory item"
        constraints = [
            models.UniqueConstraint(fields=["product", "location"],
                                    name="inventory_product_location_uniq"),
            models.CheckConstraint(condition=Q(on_hand__gte=0),
                                   name="inventory_on_hand_non_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0) & Q(reserved__lte=F("on_hand")),
                                   name="inventory_reserved_within_on_hand"),
            models.CheckConstraint(condition=Q(reorder_point__gte=0),
                                   name="inventory_reorder_point_non_negative"),
            models.CheckConstraint(condition=Q(safety_stock__gte=0),
                                   name="inventory_safety_stock_non_negative"),
        ]
        indexes = [
            # The guide's inventory indexes. The SKU one is on UPPER(sku) so that case-insensitive
            # lookups (sku__iexact, as everywhere else) use it.
            models.Index(fields=["product"], name="idx_inventory_product_id"),
            models.Index(fields=["location"], name="idx_inventory_location_id"),
            models.Index(Upper("sku"), name="idx_inventory_sku"),
            models.Index(fields=["available"], name="idx_inventory_low_stock",
                         condition=Q(available__lte=F("reorder_point"))),
            models.Index(fields=["created_at", "id"], name="idx_inventory_created"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} @ {self.location_id}"


class Reservation(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        RELEASED = "released"
        FULFILLED = "fulfilled"
        EXPIRED = "expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    inventory_item = models.ForeignKey(InventoryItem, on_delete=models.PROTECT,
                                       related_name="reservations")
    quantity = models.IntegerField()
    quantity_fulfilled = models.IntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    reference_type = models.CharField(max_length=32, blank=True, default="")
    reference_id = models.CharField(max_length=100, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True,
                                      help_text="Empty: never expires (orders).")
    for_order = models.BooleanField(
        default=False,
        help_text="Held for an order (reference_id) by the orders app: it goes only as the "
                  "order ships, is edited or is cancelled, never by a release.")
    backorder = models.ForeignKey("Backorder", on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="allocations",
                                  help_text="The waiting demand this reservation served.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0),
                                   name="reservation_quantity_positive"),
            models.CheckConstraint(
                condition=Q(quantity_fulfilled__gte=0) & Q(quantity_fulfilled__lte=F("quantity")),
                                   name="reservation_fulfilled_within_quantity"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "released", "fulfilled", "expired"]),
                                   name="reservation_status_valid"),
        ]
        indexes = [
            # reference_id first: it serves lookups by reference_id alone (API filter, release) and
            # by (reference_type, reference_id) (the orders app).
            models.Index(fields=["reference_id", "reference_type"],
                         name="idx_reservation_reference"),
            models.Index(fields=["expires_at"], name="idx_reservation_expiring",
                         condition=Q(status="active", expires_at__isnull=False)),
            models.Index(fields=["status", "created_at"], name="idx_reservation_status_created"),
            models.Index(fields=["created_at", "id"], name="idx_reservation_created"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.inventory_item_id} ({self.status})"

    @property
    def remaining(self) -> int:
        return self.quantity - self.quantity_fulfilled


class StockMovement(models.Model):
    """The ledger: one row per change of a row's ``on_hand``/``reserved``; never updated or deleted.
    Summing a row's deltas reproduces its counters. Range-partitioned by month on ``created_at``
    (the migration creates it with ``stateset.partitions.CreatePartitionedModel``); the physical
    primary key is ``(id, created_at)``. Ids are UUIDv7, so they sort by time."""

    class Kind(models.TextChoices):
        RECEIVE = "receive"
        ADJUST = "adjust"
        RESERVE = "reserve"
        RELEASE = "release"
        SHIP = "ship"
        RETURN = "return"
        TRANSFER_IN = "transfer_in"
        TRANSFER_OUT = "transfer_out"
        EXPIRE = "expire"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    inventory_item = models.ForeignKey(InventoryItem, on_delete=models.PROTECT,
                                       related_name="movements", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    on_hand_delta = models.BigIntegerField(default=0)
    reserved_delta = models.BigIntegerField(default=0)
    on_hand_after = models.BigIntegerField()
    reserved_after = models.BigIntegerField()
    reason = models.CharField(max_length=255, blank=True, default="")
    reference_type = models.CharField(max_length=32, blank=True, default="")
    reference_id = models.CharField(max_length=100, blank=True, default="")
    actor = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(on_hand_delta=0) | ~Q(reserved_delta=0),
                                   name="movement_changes_something"),
            models.CheckConstraint(condition=Q(on_hand_after__gte=0) & Q(reserved_after__gte=0)
                                   & Q(reserved_after__lte=F("on_hand_after")),
                                   name="movement_after_consistent"),
        ]
        indexes = [
            models.Index(F("inventory_item").asc(), F("created_at").desc(),
                         name="idx_movement_item_created"),
            models.Index(fields=["reference_id"], name="idx_movement_reference"),
            models.Index(fields=["kind", "created_at"], name="idx_movement_kind_created"),
            models.Index(fields=["created_at", "id"], name="idx_movement_created"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.on_hand_delta:+}/{self.reserved_delta:+} on "
            f"{self.inventory_item_id}")


class Backorder(models.Model):
    """Demand waiting for stock (SPEC §4.3, §4.4.3): the units of an order line that found too
    little sellable stock. Whenever a row's sellable stock grows, waiting demand of its product is
    served oldest order first (``queued_at`` = the order's ``created_at``, then the order's id) in
    the same transaction — a reservation per allocation — never more than became sellable. The
    inventory app owns the queue, so it can allocate wherever stock grows; the orders app reads
    it."""

    class Status(models.TextChoices):
        WAITING = "waiting"
        ALLOCATED = "allocated"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT,
                                related_name="backorders", db_index=False)
    sku = models.CharField(max_length=64)
    reference_type = models.CharField(max_length=32, default="order")
    reference_id = models.UUIDField(help_text="The order.")
    reference_number = models.CharField(max_length=32, blank=True, default="",
                                        help_text="The order's number.")
    line_id = models.UUIDField(help_text="The order line.")
    queued_at = models.DateTimeField(help_text="The order's created_at: the queue's order.")
    quantity = models.PositiveIntegerField(help_text="Units that ever waited on this line.")
    quantity_waiting = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["queued_at", "reference_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["reference_type", "line_id"],
                                    name="backorder_one_per_line"),
            models.CheckConstraint(condition=Q(quantity_waiting__lte=F("quantity")),
                                   name="backorder_waiting_le_quantity"),
            models.CheckConstraint(condition=Q(status="waiting") | Q(quantity_waiting=0),
                                   name="backorder_waiting_only_while_waiting"),
        ]
        indexes = [
            # The queue: a product's waiting lines, oldest order first.
            models.Index(fields=["product", "queued_at", "reference_id", "id"],
                         name="idx_backorder_queue", condition=Q(quantity_waiting__gt=0)),
            models.Index(fields=["reference_id"], name="idx_backorder_reference"),
            models.Index(fields=["queued_at", "id"], name="idx_backorder_created"),
        ]

    def __str__(self) -> str:
        order = self.reference_number or self.reference_id
        return f"{self.quantity_waiting} × {self.sku} for {order}"
