"""Shipments and what they carry (SPEC §4.5).

``orders_order`` is range-partitioned (docs/partitioning.md), so a shipment carries its order's
``created_at`` and the migration adds the real constraint ``(order_id, order_created_at) →
orders_order (id, created_at)``, exactly as ``OrderItem`` does.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q


class Shipment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SHIPPED = "shipped"
        IN_TRANSIT = "in_transit"
        DELIVERED = "delivered"
        EXCEPTION = "exception"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The real constraint is (order_id, order_created_at) → orders_order(id, created_at), added by
    # the migration; Django cannot express a foreign key to a composite key.
    order = models.ForeignKey("orders.Order", on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="shipments", db_index=False)
    order_created_at = models.DateTimeField(editable=False)
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT,
                                 related_name="shipments")
    carrier = models.CharField(max_length=64)
    service = models.CharField(max_length=64, blank=True, default="")
    # NULL when unset, so the partial unique index covers only real numbers.
    tracking_number = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    shipped_at = models.DateTimeField(null=True, blank=True, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Lists sort by (created_at DESC, id DESC) for keyset pagination; each filter leads its
            # own.
            models.Index(F("created_at").desc(), F("id").desc(), name="shipment_created_idx"),
            models.Index(fields=["order", "created_at"], name="shipment_order_idx"),
            models.Index(F("status"), F("created_at").desc(), name="shipment_status_created_idx"),
            models.Index(F("carrier"), F("created_at").desc(), name="shipment_carrier_created_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tracking_number"],
                                    condition=Q(tracking_number__isnull=False),
                                    name="shipment_tracking_number_uniq",
                                    violation_error_message="Another shipment already has this "
                                                            "tracking number."),
            models.CheckConstraint(condition=~Q(tracking_number=""),
                                   name="shipment_tracking_number_not_blank"),
            models.CheckConstraint(condition=~Q(carrier=""), name="shipment_carrier_not_blank"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "shipped", "in_transit", "delivered",
                                        "exception", "cancelled"]),
                name="shipment_status_valid"),
            # Shipped (and later) states carry their timestamp; a pending or cancelled one never
            # shipped.
            models.CheckConstraint(
                condition=Q(status__in=["pending", "cancelled"], shipped_at__isnull=True)
                | Q(status__in=["shipped", "in_transit", "delivered", "exception"],
                    shipped_at__isnull=False),
                name="shipment_shipped_at_matches_status"),
            models.CheckConstraint(condition=Q(status="delivered", delivered_at__isnull=False)
                                   | (~Q(status="delivered") & Q(delivered_at__isnull=True)),
                                   name="shipment_delivered_at_matches_status"),
        ]

    def __str__(self) -> str:
        return self.tracking_number or str(self.id)


class ShipmentItem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="items")
    order_item = models.ForeignKey("orders.OrderItem", on_delete=models.PROTECT,
                                   related_name="shipment_items")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["shipment_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0),
                                   name="shipment_item_quantity_positive"),
            models.UniqueConstraint(fields=["shipment", "order_item"],
                                    name="shipment_item_line_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.order_item_id}"
