"""Every write of the imports app (SPEC §4.8): take a file, run it through the owning app's batch
service in batches, keep the record of what happened.

- :func:`import_create` stores the uploaded file (in 1 MiB chunks, never whole in memory) and, after
  commit, queues :func:`import_run` as a Celery task (eager without a broker).
- :func:`import_run` reads the file through once (refusing a bad file before anything is written,
  and counting ``rows_total``), then applies it ``[imports] batch_size`` rows per transaction
  through ``catalog``, ``customers`` or ``inventory`` services: each batch's writes, its progress
  counters and its errors commit together, so a worker that dies mid-file is resumed after the
  last committed batch by the redelivered task. One worker runs an import at a time (a lease on
  the record). When it ends, ``import.finished`` goes to the outbox.
- :func:`import_apply` re-runs a dry run's file for real (the back office's preview, then apply).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from imports import formats
from imports.kinds import KINDS, ImportKind
from imports.models import Import, ImportChunk, ImportKey
from stateset.bulk import Outcome, RowResult, duplicate_error
from stateset.errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from stateset.inputs import clean_actor
from webhooks import services as webhooks

logger = logging.getLogger("imports")

CHUNK_BYTES = 1024 * 1024
MAX_ERRORS = 1000
LEASE = timedelta(minutes=5)
DRY_RUN_FILE_KEPT = timedelta(days=1)

Progress = Callable[[Import], None]


class LeaseLost(Exception):
    """Another worker took the import over (this one stalled past the lease): stop, write
    nothing."""


def import_create(*, kind: str, stream: IO[bytes], file_format: str = "csv", mode: str = "upsert",
                  dry_run: bool = False, actor: str = "", file_name: str = "", enqueue: bool = True,
                  source: Import | None = None) -> Import:
    """Record an import and store its file, read from ``stream`` 1 MiB at a time.

    Durable transaction. Raises ValidationFailed (unknown kind, mode or format; an empty file),
    PayloadTooLarge (over ``[imports] max_bytes``). With ``enqueue``, queues the run after
    commit."""
    if kind not in KINDS:
        raise ValidationFailed("kind: products, customers or inventory.",
                               details={"kind": ["Invalid choice."]})
    if mode not in Import.Mode.values:
        raise ValidationFailed("mode: upsert or create.", details={"mode": ["Invalid choice."]})
    if file_format not in Import.Format.values:
        raise ValidationFailed("format: csv or ndjson.", details={"format": ["Invalid choice."]})
    limit = settings.IMPORTS_MAX_BYTES
    with transaction.atomic(durable=True):
        record = Import.objects.create(kind=kind, mode=mode, dry_run=dry_run, format=file_format,
                                       file_name=file_name[:255],
                                       created_by=clean_actor(actor, 100), source=source)
        digest, size, seq = hashlib.sha256(), 0, 0
        while data := stream.read(CHUNK_BYTES):
            size += len(data)
            if size > limit:
                raise PayloadTooLarge(f"The file exceeds {limit} bytes.",
                                      details={"limit_bytes": limit})
            digest.update(data)
            ImportChunk.objects.create(import_record=record, seq=seq, data=data)
            seq += 1
        if not size:
            raise ValidationFailed("The file is empty.", code="empty_file")
        Import.objects.filter(pk=record.pk).update(file_bytes=size, file_sha256=digest.hexdigest())
        record.file_bytes, record.file_sha256 = size, digest.hexdigest()
        if enqueue:  # robust: without a broker the run is eager, and its failure is the record's
            transaction.on_commit(lambda: _enqueue(record.id), robust=True)
    return record


def _enqueue(import_id: uuid.UUID) -> None:
    from imports import tasks

    try:
        tasks.import_run.delay(str(import_id))
    except Exception:  # broker down (the hourly sweep queues it again), or an eager run that broke
        logger.warning("could not queue or run import %s", import_id, exc_info=True)


def import_apply(*, import_id: uuid.UUID, actor: str = "") -> Import:
    """Run a finished dry run's file for real: a new import (``source`` = the dry run) with a copy
    of its file, queued after commit. Raises NotFound, Conflict (not a succeeded dry run, already
    applied, or its file was purged)."""
    dry = Import.objects.filter(pk=import_id).first()
    if dry is None:
        raise NotFound("No such import.", code="import_not_found")
    if not dry.dry_run or dry.status != Import.Status.SUCCEEDED:
        raise Conflict("Only a dry run that succeeded can be applied.", code="not_applicable")
    if dry.file_purged_at is not None:
        raise Conflict("The file of this dry run is no longer kept; upload it again.",
                       code="file_purged")
    if Import.objects.filter(source=dry).exists():
        raise Conflict("This dry run was applied already.", code="already_applied")
    with transaction.atomic(durable=True):
        record = Import.objects.create(kind=dry.kind, mode=dry.mode, dry_run=False,
                                       format=dry.format,
                                       file_name=dry.file_name, file_bytes=dry.file_bytes,
                                       file_sha256=dry.file_sha256,
                                       created_by=clean_actor(actor, 100), source=dry)
        with connection.cursor() as cursor:  # copied inside PostgreSQL, never through this process
            cursor.execute(
                f"INSERT INTO {ImportChunk._meta.db_table} (import_record_id, seq, data) "
                           f"SELECT %s, seq, data FROM {ImportChunk._meta.db_table} WHERE "
                           "import_record_id = %s",
                           [record.id, dry.id])
        transaction.on_commit(lambda: _enqueue(record.id), robust=True)
    return record


# --- the run -------------------------------------------------------------------------------------


def _claim(import_id: uuid.UUID, token: uuid.UUID) -> bool:
    now = timezone.now()
    return bool(Import.objects.filter(
        Q(pk=import_id), Q(status__in=[Import.Status.QUEUED, Import.Status.RUNNING]),
        Q(run_token__isnull=True) | Q(heartbeat_at__lt=now - LEASE),
    ).update(status=Import.Status.RUNNING, run_token=token, heartbeat_at=now,
             started_at=Coalesce("started_at", now)))


def import_run(*, import_id: uuid.UUID, progress: Progress | None = None) -> Import | None:
    """Run (or resume) an import; what the Celery task and ``import_data`` call.

    Returns the finished record, or None when there is nothing to do (unknown, finished, or run
    by another worker right now). Each batch is a durable transaction. A refused file ends
    ``failed`` with one error; anything unexpected ends it ``failed`` with ``import_error`` (and is
    raised for the log)."""
    token = uuid.uuid4()
    if not _claim(import_id, token):
        return None
    record = Import.objects.get(pk=import_id)
    kind = KINDS[record.kind]
    try:
        if record.rows_total is None:
            total = formats.count_rows(record.id, record.format, kind)
            _save(record, token, rows_total=total)
            record.rows_total = total
        if progress:
            progress(record)
        _apply_file(record, kind, token, progress)
    except formats.FileRefused as exc:
        return _finish(record, token, Import.Status.FAILED, refusal=exc.as_error())
    except LeaseLost:
        logger.warning("import %s was taken over by another worker", record.id)
        return None
    except Exception:
        logger.exception("import %s stopped", record.id)
        _finish(record, token, Import.Status.FAILED, stopped={
            "row": record.rows_done + 1, "column": None, "code": "import_error",
            "message": "The import stopped on an internal error; the rows before this one were "
                       "applied."})
        raise
    return _finish(record, token, Import.Status.SUCCEEDED)


def _save(record: Import, token: uuid.UUID, **values: Any) -> None:
    updated = Import.objects.filter(pk=record.pk,
                                    run_token=token).update(heartbeat_at=timezone.now(), **values)
    if not updated:
        raise LeaseLost


def _apply_file(record: Import, kind: ImportKind, token: uuid.UUID,
                progress: Progress | None) -> None:
    batch: list[formats.Record] = []
    size = settings.IMPORTS_BATCH_SIZE
    for item in formats.records(record.id, record.format, kind):
        if item.row <= record.rows_done:
            continue  # applied by an earlier run of this import
        batch.append(item)
        if len(batch) >= size:
            _apply_batch(record, kind, token, batch)
            batch = []
            if progress:
                progress(record)
    if batch:
        _apply_batch(record, kind, token, batch)
        if progress:
            progress(record)


# The keys travel as one text split by PostgreSQL: far cheaper to send than a text[] of 1,000.
_SEPARATOR = "\x1e"
_CLAIM_KEYS_SQL = (f"INSERT INTO {ImportKey._meta.db_table} (import_record_id, key) "
                   "SELECT %s, unnest(string_to_array(%s, E'\\x1e')) ON CONFLICT DO NOTHING "
                   "RETURNING key")


def _apply_batch(record: Import, kind: ImportKind, token: uuid.UUID,
                 batch: list[formats.Record]) -> None:
    """Apply one batch in one durable transaction: claim its keys (a key seen on an earlier row is
    ``duplicate_in_file``, whether or not that row was valid), hand the rows that converted to the
    kind's batch service, record what happened."""
    results: dict[int, RowResult] = {}
    candidates = [(item, _key(kind, item)) for item in batch]
    with transaction.atomic(durable=True):
        # A batch lost in a crash is lost with its progress counters (the same commit), and the
        # redelivered task resumes after the last batch that reached the disk: the import need
        # not wait for each commit's flush.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
        keys = sorted({key for _, key in candidates if key is not None})
        fresh: set[str] = set()
        if keys:
            with connection.cursor() as cursor:
                cursor.execute(_CLAIM_KEYS_SQL, [record.id, _SEPARATOR.join(keys)])
                fresh = {row[0] for row in cursor.fetchall()}
        rows: list[formats.Record] = []
        for item, key in candidates:
            repeated = key is not None and key not in fresh  # seen on an earlier row of the file
            if key is not None:
                fresh.discard(key)
            if repeated or item.errors:
                results[item.row] = RowResult.failed(*item.errors,
                                                     *([duplicate_error(kind.key_column)]
                                                                     if repeated else []))
            else:
                rows.append(item)
        if rows:
            answers = kind.write([item.values for item in rows], mode=record.mode,
                                 dry_run=record.dry_run,
                                 actor=record.created_by or "import", import_id=str(record.id))
            results.update((item.row, answer) for item, answer in zip(rows, answers, strict=True))
        _record_batch(record, token, batch[-1].row, results)


def _key(kind: ImportKind, item: formats.Record) -> str | None:
    key = kind.key(item.values)
    return key.replace(_SEPARATOR, "") or None if key is not None else None


def _record_batch(record: Import, token: uuid.UUID, last_row: int,
                  results: dict[int, RowResult]) -> None:
    tally = {outcome: 0 for outcome in Outcome}
    errors: list[dict[str, Any]] = []
    for row in sorted(results):
        result = results[row]
        tally[result.outcome] += 1
        errors += [error.as_dict(row) for error in result.errors]
    room = max(0, MAX_ERRORS - len(record.errors))
    kept = errors[:room]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Import._meta.db_table} SET rows_done = %s, created = created + %s, updated = "
            "updated + %s, "
            "unchanged = unchanged + %s, failed = failed + %s, errors = errors || %s::jsonb, "
            "error_count = error_count + %s, heartbeat_at = %s WHERE id = %s AND run_token = %s",
            [last_row, tally[Outcome.CREATED], tally[Outcome.UPDATED], tally[Outcome.UNCHANGED],
             tally[Outcome.FAILED], _json(kept), len(errors), timezone.now(), record.id, token])
        if not cursor.rowcount:
            raise LeaseLost
    record.rows_done = last_row
    record.created += tally[Outcome.CREATED]
    record.updated += tally[Outcome.UPDATED]
    record.unchanged += tally[Outcome.UNCHANGED]
    record.failed += tally[Outcome.FAILED]
    record.errors = [*record.errors, *kept]
    record.error_count += len(errors)


def _json(value: Any) -> str:
    from stateset.encoding import dumps

    return dumps(value).decode()


def _finish(record: Import, token: uuid.UUID, status: str, *, refusal: dict[str, Any] | None = None,
            stopped: dict[str, Any] | None = None) -> Import | None:
    """End the run: status, timings, ``import.finished``; the keys read are dropped, and the file
    too unless it is a dry run's (which may still be applied). ``refusal`` is the one error of a
    refused file; ``stopped`` is added to the row errors of a run that broke off."""
    now = timezone.now()
    values: dict[str, Any] = {"status": status, "finished_at": now, "run_token": None,
                              "heartbeat_at": None}
    if refusal is not None:
        values.update(errors=[refusal], error_count=1)
    if stopped is not None:
        values.update(errors=[*record.errors[: MAX_ERRORS - 1], stopped],
                      error_count=record.error_count + 1)
    if not record.dry_run:
        values["file_purged_at"] = now
    with transaction.atomic(durable=True):
        if not Import.objects.filter(pk=record.pk, run_token=token).update(**values):
            return None
        ImportKey.objects.filter(import_record_id=record.pk).delete()
        if not record.dry_run:
            ImportChunk.objects.filter(import_record_id=record.pk).delete()
        record.refresh_from_db()
        webhooks.publish(event_type="import.finished", payload=finished_payload(record))
    return record


def finished_payload(record: Import) -> dict[str, Any]:
    return {"import_id": str(record.id), "kind": record.kind, "mode": record.mode,
            "dry_run": record.dry_run,
            "status": record.status, "rows_total": record.rows_total, "rows_done": record.rows_done,
            "created": record.created, "updated": record.updated, "unchanged": record.unchanged,
            "failed": record.failed, "error_count": record.error_count}


def imports_purge() -> int:
    """Hourly: drop the files of dry runs finished more than a day ago (they can no longer be
    applied) and queue again any import still queued after the lease (a lost task). Returns how
    many files were dropped."""
    now = timezone.now()
    stale = list(Import.objects.filter(file_purged_at__isnull=True,
                                       finished_at__lt=now - DRY_RUN_FILE_KEPT)
                 .values_list("id", flat=True)[:1000])
    if stale:
        with transaction.atomic(durable=True):
            ImportChunk.objects.filter(import_record_id__in=stale).delete()
            Import.objects.filter(id__in=stale).update(file_purged_at=now)
    for import_id in Import.objects.filter(
            Q(status=Import.Status.QUEUED, created_at__lt=now - LEASE)
            | Q(status=Import.Status.RUNNING, heartbeat_at__lt=now - LEASE)).values_list("id",
                                                                                         flat=True)[
                                                                                             :100]:
        _enqueue(import_id)
    return len(stale)
