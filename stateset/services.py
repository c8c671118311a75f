"""Writes of the API platform: API keys and idempotency records."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from stateset.config import ConfigError, parse_rate
from stateset.errors import Conflict, ValidationFailed
from stateset.keys import KEY_PREFIX, hash_key, key_cache, scope_is_valid
from stateset.models import ApiKey, IdempotencyRecord

logger = logging.getLogger("stateset")

# --------------------------------------------------------------------------------------------------
# API keys


def api_key_create(*, name: str, scopes: list[str], key: str | None = None,
                   expires_at: datetime | None = None, rate_limit: str = "") -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret (shown once, never stored).

    Raises ValidationFailed for an empty name, an unknown scope, a malformed ``key`` or rate, and
    Conflict when ``key`` is already registered."""
    name = name.strip()
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 100:
        errors["name"] = ["Give a name of 1 to 100 characters."]
    scopes = [s.strip() for s in scopes if s.strip()]
    bad = [s for s in scopes if not scope_is_valid(s)]
    if not scopes or bad:
        errors["scopes"] = [f"Unknown scope(s): {', '.join(bad)}." if bad
                            else "Give at least one scope."]
    if (key is not None
        and (not key.startswith(KEY_PREFIX) or len(key) < len(KEY_PREFIX) + 16 or len(key) > 200)):
        errors["key"] = [f"A key starts with {KEY_PREFIX} and has 16 to 197 more characters."]
    if rate_limit:
        try:
            parse_rate(rate_limit, key="rate_limit")
        except ConfigError as exc:
            errors["rate_limit"] = [str(exc)]
    if errors:
        raise ValidationFailed("Invalid API key.", details=errors)
    raw = key or f"{KEY_PREFIX}{secrets.token_urlsafe(32)}"
    try:
        with transaction.atomic():
            api_key = ApiKey.objects.create(name=name, prefix=raw[:10], key_hash=hash_key(raw),
                                            scopes=scopes, expires_at=expires_at,
                                            rate_limit=rate_limit)
    except IntegrityError:
        raise Conflict("This key is already registered.", code="api_key_exists") from None
    return api_key, raw


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    transaction.on_commit(key_cache.clear)
    return api_key


def api_key_touch(*, key_id: str, at: datetime) -> int:
    """Set ``last_used_at`` unless it already moved within the minute (one UPDATE, no read)."""
    try:
        return (
            ApiKey.objects.filter(id=key_id)
            .exclude(last_used_at__gt=at - timedelta(minutes=1))
            .update(last_used_at=at)
        )
    except DatabaseError:
        logger.warning("last_used_at update failed", exc_info=True)
        return 0


# --------------------------------------------------------------------------------------------------
# Idempotency (SPEC §3): claim → run → complete (or release on a crash)

IN_FLIGHT_LEASE = timedelta(seconds=60)


@dataclass
class Claim:
    record_id: int | None = None
    replay: IdempotencyRecord | None = None


class IdempotencyInFlight(Conflict):
    code = "idempotency_in_progress"
    default_message = "A request with this Idempotency-Key is still being processed; retry shortly."


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was used with a different request."


def idempotency_claim(*, owner: str, key: str, method: str, path: str, request_hash: str) -> Claim:
    """Claim ``key`` for this request (one INSERT ... ON CONFLICT), or find the stored answer.

    Runs in autocommit so a concurrent request sees the claim at once. Raises IdempotencyKeyReused
    (422) for a different body or endpoint, IdempotencyInFlight (409) while the first still runs.
    A claim older than its lease (the process died) is taken over."""
    now = timezone.now()
    table = IdempotencyRecord._meta.db_table
    for _ in range(3):
        # One statement claims a new key (the common case); a conflict means it exists already.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table} (owner, key, method, path, request_hash, status,
                                     response_headers, locked_until, created_at, expires_at)
                VALUES (%s, %s, %s, %s, %s, %s, '{{}}'::jsonb, %s, %s, %s)
                ON CONFLICT (owner, key) DO NOTHING
                RETURNING id
                """,
                [owner, key, method, path, request_hash, IdempotencyRecord.Status.IN_PROGRESS,
                 now + IN_FLIGHT_LEASE, now, now + timedelta(seconds=settings.API_IDEMPOTENCY_TTL)],
            )
            inserted = cursor.fetchone()
        if inserted:
            return Claim(record_id=inserted[0])
        record = IdempotencyRecord.objects.filter(owner=owner, key=key).first()
        if record is None:  # expired and purged between the two statements
            continue
        if record.expires_at <= now:
            IdempotencyRecord.objects.filter(id=record.id, expires_at__lte=now).delete()
            continue
        if record.request_hash != request_hash or record.path != path or record.method != method:
            raise IdempotencyKeyReused()
        if record.status == IdempotencyRecord.Status.COMPLETED:
            return Claim(replay=record)
        taken = IdempotencyRecord.objects.filter(
            id=record.id, status=IdempotencyRecord.Status.IN_PROGRESS, locked_until__lte=now
        ).update(locked_until=now + IN_FLIGHT_LEASE)
        if taken:
            return Claim(record_id=record.id)
        raise IdempotencyInFlight()
    raise IdempotencyInFlight()


def idempotency_complete(*, record_id: int, status: int, body: Any,
                         headers: dict[str, str]) -> None:
    """Store the final answer. ``body`` goes in as orjson-encoded JSON (it can be a whole order)."""
    from stateset.encoding import dumps

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {IdempotencyRecord._meta.db_table} SET status = %s, response_status = %s, "
            "response_body = %s::jsonb, response_headers = %s::jsonb WHERE id = %s",
            [IdempotencyRecord.Status.COMPLETED, status, dumps(body).decode(),
             dumps(headers).decode(), record_id],
        )


def idempotency_release(*, record_id: int) -> None:
    """The request failed without a final answer (a 5xx): let the client retry with the same key."""
    IdempotencyRecord.objects.filter(id=record_id,
                                     status=IdempotencyRecord.Status.IN_PROGRESS).delete()


def idempotency_purge_expired(*, batch_size: int = 5000) -> int:
    """Delete expired records in batches (the hourly beat task)."""
    deleted = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(expires_at__lte=timezone.now())
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += IdempotencyRecord.objects.filter(id__in=ids).delete()[0]
