"""Tables of the API platform: API keys and stored idempotent responses."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models


class ApiKey(models.Model):
    """A credential for the REST API. Only the SHA-256 of the key is stored; the key itself is shown
    once, when it is created. Keys are 32+ random bytes, so a fast hash is enough (no salt needed:
    nothing to brute-force)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16,
                              help_text="The first characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = ArrayField(models.CharField(max_length=64), default=list)
    rate_limit = models.CharField(
        max_length=32, blank=True, default="",
        help_text='Per-key limit such as "6000/min"; empty = the default.'
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyRecord(models.Model):
    """The first answer to a POST carrying ``Idempotency-Key``, replayed for repeats (SPEC §3)."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    id = models.BigAutoField(primary_key=True)
    owner = models.CharField(max_length=64, help_text="key:<api key id> or user:<user id>")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    locked_until = models.DateTimeField(
        help_text="An in-progress claim older than this was abandoned.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"],
                                               name="idempotency_owner_key_uniq")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
