"""Tables of the API platform: API keys and stored idempotent responses."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from stateset import keys


class ApiKey(models.Model):
    """A credential for the REST API (SPEC §3). The secret is shown once, when it is created or
    rotated; only its keyed hash is stored (``stateset.keys.hash_key``). After a rotation with a
    grace period the previous secret's hash is kept until ``previous_expires_at``."""

    class HashScheme(models.TextChoices):
        HMAC_SHA256 = keys.HMAC_SHA256, "HMAC-SHA256 (peppered)"
        SHA256 = keys.SHA256, "SHA-256 (legacy)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16,
                              help_text="The first characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    hash_scheme = models.CharField(max_length=16, choices=HashScheme.choices,
                                   default=HashScheme.HMAC_SHA256, editable=False)
    previous_key_hash = models.CharField(max_length=64, unique=True, null=True, blank=True,
                                         editable=False)
    previous_hash_scheme = models.CharField(max_length=16, choices=HashScheme.choices, blank=True,
                                            default="", editable=False)
    previous_expires_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="The secret before the last rotation works until then."
    )
    scopes = ArrayField(models.CharField(max_length=64), default=list)
    rate_limit = models.CharField(
        max_length=32, blank=True, default="",
        help_text='Per-key limit such as "6000/min"; empty = the default.'
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.CharField(max_length=100, blank=True, default="", editable=False,
                                  help_text=("Who created it: an API key, a staff user or a "
                                             "command."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(hash_scheme__in=keys.HASH_SCHEMES),
                                   name="apikey_hash_scheme_valid"),
            # A previous secret always has its scheme and its end.
            models.CheckConstraint(
                condition=Q(previous_key_hash__isnull=True, previous_expires_at__isnull=True,
                            previous_hash_scheme="")
                | Q(previous_key_hash__isnull=False, previous_expires_at__isnull=False,
                    previous_hash_scheme__in=keys.HASH_SCHEMES),
                name="apikey_previous_secret_complete",
            ),
        ]

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
