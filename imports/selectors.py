"""Every read of imports the API and the back office need."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from imports.models import Import

SUMMARY_FIELDS = ("id", "kind", "mode", "dry_run", "format", "status", "file_name", "file_bytes",
                  "rows_total",
                  "rows_done", "created", "updated", "unchanged", "failed", "error_count",
                  "created_by", "source_id", "created_at", "started_at", "finished_at")


def render_import(row: dict[str, Any]) -> dict[str, Any]:
    """The one shape of an import (list items lack ``errors``, details have them)."""
    started, finished = row["started_at"], row["finished_at"]
    data = {name: row[name] for name in SUMMARY_FIELDS if name != "source_id"}
    data["id"] = str(row["id"])
    data["source_import_id"] = str(row["source_id"]) if row["source_id"] else None
    data["duration_ms"] = (round((finished - started).total_seconds() * 1000) if started
                           and finished else None)
    if "errors" in row:
        data["errors"] = row["errors"]
    return data


def render_imports(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [render_import(row) for row in rows]


def import_list(*, kind: str | None = None, status: str | None = None,
                dry_run: bool | None = None) -> QuerySet:
    rows = Import.objects.all()
    if kind:
        rows = rows.filter(kind=kind)
    if status:
        rows = rows.filter(status=status)
    if dry_run is not None:
        rows = rows.filter(dry_run=dry_run)
    return rows.values(*SUMMARY_FIELDS)


def import_detail(import_id: uuid.UUID) -> dict[str, Any] | None:
    row = Import.objects.filter(pk=import_id).values(*SUMMARY_FIELDS, "errors").first()
    return render_import(row) if row else None
