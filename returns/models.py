"""Returns (RMAs) and their lines (SPEC §4.6).

A return references its order through ``(order_id, order_created_at)`` → ``orders_order(id,
created_at)``: the orders table is range-partitioned, so the database can only enforce the
reference with the partition key in it (docs/partitioning.md). The ORM side is a plain
``ForeignKey(db_constraint=False)``; migration 0001 adds the real constraint.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Func, Q
from django.utils import timezone


class NextRmaNumber(Func):
    """``RMA-000123`` from a sequence (SQL function in migration 0001; it never truncates past six
    digits)."""

    function = "returns_next_rma_number"
    arity = 0

    def __init__(self) -> None:
        super().__init__(output_field=models.CharField())


STATUSES = ["requested", "approved", "rejected", "received", "refunded", "closed", "cancelled"]


class Return(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested"
        APPROVED = "approved"
        REJECTED = "rejected"
        RECEIVED = "received"
        REFUNDED = "refunded"
        CLOSED = "closed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rma_number = models.CharField(max_length=32, db_default=NextRmaNumber(), editable=False)
    # The real constraint is (order_id, order_created_at) → orders_order(id, created_at), added by
    # the migration; Django cannot express a foreign key to a composite key.
    order = models.ForeignKey("orders.Order", on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="returns", db_index=False)
    order_created_at = models.DateTimeField(editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED)
    reason = models.CharField(max_length=500, blank=True, default="")
    refund_amount = models.DecimalField(max_digits=16, decimal_places=3, null=True, blank=True,
                                        help_text="Set when the return is refunded: what was "
                                                  "refunded.")
    currency = models.CharField(max_length=3, default="USD")
    notes = models.TextField(blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Moves that are not plain model changes (SPEC §5 "Who may do what").
        permissions = [
            ("receive_return", "Can receive a return"),
            ("refund_return", "Can refund a return"),
        ]
        ordering = ["-created_at", "-id"]
        indexes = [
            # Lists sort by (created_at DESC, id DESC) for keyset pagination; the filters lead.
            models.Index(F("created_at").desc(), F("id").desc(), name="return_created_idx"),
            models.Index(F("status"), F("created_at").desc(), name="return_status_created_idx"),
            models.Index(F("order"), F("created_at").desc(), name="return_order_created_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["rma_number"], name="return_rma_number_uniq"),
            models.CheckConstraint(condition=Q(status__in=STATUSES), name="return_status_valid"),
            models.CheckConstraint(
                condition=Q(refund_amount__isnull=True) | Q(refund_amount__gte=0),
                                   name="return_refund_non_negative"),
            models.CheckConstraint(
                condition=Q(refund_amount__isnull=True) | Q(status__in=["refunded", "closed"]),
                name="return_refund_only_when_refunded",
            ),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"),
                                   name="return_currency_iso"),
        ]

    def __str__(self) -> str:
        return self.rma_number or str(self.id)


class ReturnItem(models.Model):
    class Condition(models.TextChoices):
        RESELLABLE = "resellable"
        DAMAGED = "damaged"
        DEFECTIVE = "defective"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # ``return`` is a Python keyword, hence ``rma``.
    rma = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="items", db_index=False)
    order_item = models.ForeignKey("orders.OrderItem", on_delete=models.PROTECT,
                                   related_name="return_items")
    quantity = models.PositiveIntegerField()
    condition = models.CharField(max_length=16, choices=Condition.choices)
    restock = models.BooleanField(default=True,
                                  help_text="Put resellable units back on hand on receipt.")
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, null=True,
                                 blank=True, related_name="return_items",
                                 help_text=("Where restocked units go; chosen on receipt when "
                                            "empty."))
    refund_amount = models.DecimalField(max_digits=16, decimal_places=3, null=True, blank=True,
                                        help_text="Its units' share of their line's net price and "
                                                  "tax.")

    class Meta:
        ordering = ["rma_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0),
                                   name="return_item_quantity_positive"),
            models.CheckConstraint(
                condition=Q(condition__in=["resellable", "damaged", "defective"]),
                                   name="return_item_condition_valid"),
            # A line may come back in several conditions (1 resellable, 1 damaged), each once. Also
            # the index for "the items of a return" (rma_id leads).
            models.UniqueConstraint(fields=["rma", "order_item", "condition"],
                                    name="return_item_line_condition_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.order_item_id} ({self.condition})"
