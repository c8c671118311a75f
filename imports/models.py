"""Imports (SPEC §4.8): the record of each import with its progress and per-row errors, the file
it reads (stored in PostgreSQL in 1 MiB chunks, so a worker on any machine streams it), and the
keys seen so far (how a key repeated anywhere in a file is found without holding the file's keys
in memory)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class Import(models.Model):
    class Kind(models.TextChoices):
        PRODUCTS = "products"
        CUSTOMERS = "customers"
        INVENTORY = "inventory"

    class Mode(models.TextChoices):
        UPSERT = "upsert"
        CREATE = "create"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # the file as a whole was refused (bad rows still end succeeded)

    class Format(models.TextChoices):
        CSV = "csv"
        NDJSON = "ndjson"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.UPSERT)
    dry_run = models.BooleanField(default=False)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.CSV)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_bytes = models.BigIntegerField(default=0)
    file_sha256 = models.CharField(max_length=64, blank=True, default="")
    rows_total = models.IntegerField(null=True, blank=True,
                                     help_text="Known once the file was read through.")
    rows_done = models.IntegerField(default=0)
    created = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first 1,000 errors.")
    error_count = models.IntegerField(default=0, help_text="Every error, also those not kept.")
    created_by = models.CharField(max_length=100, blank=True, default="")
    source = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="applied_as",
                               help_text="The dry run this import applies (back office preview).")
    # The run's lease: one worker at a time (a redelivered task waits until the lease lapses).
    run_token = models.UUIDField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    file_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="import_created_idx"),
            models.Index(fields=["kind", "-created_at"], name="import_kind_created_idx"),
            models.Index(fields=["finished_at"], name="import_file_kept_idx",
                         condition=Q(file_purged_at__isnull=True)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["products", "customers", "inventory"]),
                                   name="import_kind_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]),
                                   name="import_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} import {self.id} ({self.status})"


class ImportChunk(models.Model):
    """One piece (up to 1 MiB) of an import's file, in order."""

    id = models.BigAutoField(primary_key=True)
    import_record = models.ForeignKey(Import, on_delete=models.CASCADE, related_name="chunks",
                                      db_index=False)
    seq = models.IntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["import_record", "seq"],
                                               name="import_chunk_seq_uniq")]

    def __str__(self) -> str:
        return f"chunk {self.seq} of {self.import_record_id}"


class ImportKey(models.Model):
    """A key (a SKU, an email, a SKU at a location) an import has read: inserting the next batch's
    keys with ``ON CONFLICT DO NOTHING`` names the repeats. Deleted when the import finishes."""

    id = models.BigAutoField(primary_key=True)
    import_record = models.ForeignKey(Import, on_delete=models.CASCADE, related_name="+",
                                      db_index=False)
    key = models.CharField(max_length=400)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["import_record", "key"],
                                               name="import_key_uniq")]

    def __str__(self) -> str:
        return self.key
