"""The outbox of domain events, the endpoints subscribed to them and the log of every delivery."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

# SPEC §4.7: the events a webhook endpoint may subscribe to ("*" subscribes to all of them).
EVENT_TYPES = (
    "order.created",
    "order.status_changed",
    "order.cancelled",
    "inventory.reserved",
    "inventory.low_stock",
    "shipment.shipped",
    "shipment.delivered",
    "return.approved",
    "return.refunded",
    # SPEC §4.7: every domain change is an event.
    "order.updated",
    "order.backorder_allocated",
    "shipment.created",
    "shipment.cancelled",
    "return.requested",
    "return.received",
    "return.rejected",
    "return.closed",
    "product.created",
    "product.updated",
    "product.deleted",
    "customer.created",
    "customer.updated",
    "inventory.received",
    "inventory.adjusted",
    "inventory.transferred",
    "inventory.released",
    "inventory.expired",
    "payment.recorded",
    "import.finished",
)


class Event(models.Model):
    """One domain event, written in the same transaction as the change it describes (the outbox).
    ``dispatched_at`` is set once deliveries have been created for every subscribed endpoint."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # dispatch: the oldest undispatched events (a small partial index, whatever the backlog)
            models.Index(fields=["created_at"], condition=Q(dispatched_at__isnull=True),
                         name="webhook_event_undispatched_idx"),
            # the admin's newest-first list and the retention purge
            models.Index(fields=["created_at"], name="webhook_event_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class Endpoint(models.Model):
    """A URL that receives the events it subscribes to, signed with its secret."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2000)
    events = ArrayField(models.CharField(max_length=64), help_text='Event types, or ["*"] for all.')
    secret = models.CharField(max_length=128, editable=False)
    description = models.CharField(max_length=255, blank=True, default="")
    is_active = models.BooleanField(default=True)
    # SPEC §4.7: after ``[webhooks] disable_after`` failed attempts in a row the endpoint is
    # disabled (is_active false, disabled_at and the reason set); its events wait as pending
    # deliveries until a client sets is_active again. A 2xx answer resets the count.
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    # SPEC §4.7: a rotated secret keeps signing (a second v1=) until previous_secret_expires_at.
    previous_secret = models.CharField(max_length=128, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="webhook_endpoint_created_idx")]

    def __str__(self) -> str:
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events

    @property
    def receives(self) -> bool:
        """Its events become deliveries: active, or disabled for failing (they wait, pending)."""
        return self.is_active or self.disabled_at is not None


class Delivery(models.Model):
    """One event for one endpoint: attempted until a 2xx answer or ``[webhooks] max_attempts``."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries",
                                 db_index=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"],
                                               name="webhook_delivery_once")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"),
                         name="webhook_delivery_due_idx"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint_idx"),
            models.Index(fields=["status", "-created_at"], name="webhook_delivery_status_idx"),
            models.Index(fields=["-created_at"], name="webhook_delivery_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"
