"""Writes of the API platform: API keys and idempotency records."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from stateset import locks
from stateset.config import ConfigError, parse_rate
from stateset.errors import Conflict, Forbidden, NotFound, ValidationFailed
from stateset.inputs import clean_actor, writable
from stateset.keys import (
    KEY_PREFIX,
    Grantor,
    candidate_hashes,
    generation,
    hash_key,
    new_secret,
    scope_is_valid,
    scopes_not_held,
)
from stateset.models import ApiKey, IdempotencyRecord

logger = logging.getLogger("stateset")

# --------------------------------------------------------------------------------------------------
# API keys (SPEC §3). Every change replaces the keys' generation token (stateset.keys) now and again
# after its commit, so no process's cache serves the key as it was.

MAX_GRACE_SECONDS = 30 * 86400
KEY_FIELDS = ("name", "scopes", "rate_limit", "expires_at")


def _keys_changed() -> None:
    generation.bump()
    transaction.on_commit(generation.bump)


def _clean_key_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Validated ``name``, ``scopes``, ``rate_limit``, ``expires_at`` (those given)."""
    values = writable(fields, KEY_FIELDS)
    errors: dict[str, list[str]] = {}
    if "name" in values:
        values["name"] = (values["name"] or "").strip()
        if not values["name"] or len(values["name"]) > 100 or "\x00" in values["name"]:
            errors["name"] = ["Give a name of 1 to 100 characters."]
    if "scopes" in values:
        scopes = list(dict.fromkeys(s.strip() for s in values["scopes"] or [] if s.strip()))
        bad = [s for s in scopes if not scope_is_valid(s)]
        if not scopes or bad:
            errors["scopes"] = [f"Unknown scope(s): {', '.join(bad)}." if bad
                                else "Give at least one scope."]
        values["scopes"] = scopes
    if values.get("rate_limit"):
        values["rate_limit"] = values["rate_limit"].strip()
        try:
            parse_rate(values["rate_limit"], key="rate_limit")
        except ConfigError as exc:
            errors["rate_limit"] = [str(exc)]
    elif "rate_limit" in values:
        values["rate_limit"] = ""
    expires_at = values.get("expires_at")
    if expires_at is not None and timezone.is_naive(expires_at):
        errors["expires_at"] = ["Give a time with a time zone."]
    if errors:
        raise ValidationFailed(f"Invalid {', '.join(sorted(errors))}.", details=errors)
    return values


def api_key_validate(*, fields: dict[str, Any]) -> dict[str, Any]:
    """The checks of :func:`api_key_create` on ``fields`` (a form's clean()). Raises
    ValidationFailed naming each bad field; returns the cleaned values."""
    return _clean_key_fields(fields)


def _per_second(rate: str) -> float | None:
    if not rate:
        return None
    count, window = parse_rate(rate)
    return count / window


def _check_grant(grantor: Grantor | None, *, scopes: list[str], expires_at: datetime | None,
                 rate_limit: str) -> None:
    """A key hands out (or manages) only what it holds: its scopes, no longer a life than its own,
    no higher a rate. ``grantor`` None is an operator (command, admin superuser): anything."""
    if grantor is None:
        return
    missing = scopes_not_held(grantor.scopes, scopes)
    if missing:
        raise Forbidden(
            f"A key can only grant scopes it holds; this one lacks {', '.join(missing)}.",
                        code="insufficient_scope", details={"scopes": missing})
    if grantor.expires_at is not None and (expires_at is None or expires_at > grantor.expires_at):
        raise Forbidden("A key cannot grant a key that outlives it.", code="exceeds_own_key",
                        details={"expires_at": grantor.expires_at})
    own = _per_second(grantor.rate_limit or settings.API_RATE_LIMIT)
    given = _per_second(rate_limit or settings.API_RATE_LIMIT)
    if own is not None and (given is None or given > own):
        raise Forbidden("A key cannot grant a higher rate limit than its own.",
                        code="exceeds_own_key",
                        details={"rate_limit": grantor.rate_limit or settings.API_RATE_LIMIT})


def _secret_taken(raw: str) -> bool:
    digests = list(candidate_hashes(raw).values())
    return ApiKey.objects.filter(
        Q(key_hash__in=digests) | Q(previous_key_hash__in=digests)).exists()


def api_key_create(*, name: str, scopes: list[str], key: str | None = None,
                   expires_at: datetime | None = None, rate_limit: str = "",
                   grantor: Grantor | None = None, created_by: str = "") -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret (shown once, never stored).

    ``grantor`` is the key (or user) handing it out: it must hold every scope given, and a key with
    an expiry or a rate limit cannot grant a key without them or beyond them (Forbidden, 403).
    Raises ValidationFailed (422) for an empty name, an unknown scope, a naive expiry, a malformed
    ``key`` or rate; Conflict when ``key`` is already registered. Replaces the keys' generation."""
    values = _clean_key_fields({"name": name, "scopes": scopes, "expires_at": expires_at,
                                "rate_limit": rate_limit})
    if (key is not None
        and (not key.startswith(KEY_PREFIX) or not 16 <= len(key) - len(KEY_PREFIX) <= 197)):
        raise ValidationFailed("Invalid key: not a StateSet API key.",
                               details={
                                   "key": [
                                       f"A key starts with {KEY_PREFIX} and has 16 to 197 more "
                                       "characters."]})
    if grantor is not None and grantor.expires_at is not None and values["expires_at"] is None:
        values["expires_at"] = grantor.expires_at  # a key made by an expiring key expires with it
    if grantor is not None and not values["rate_limit"] and grantor.rate_limit:
        values["rate_limit"] = grantor.rate_limit
    _check_grant(grantor, scopes=values["scopes"], expires_at=values["expires_at"],
                 rate_limit=values["rate_limit"])
    raw = key or new_secret()
    if key is not None and _secret_taken(raw):
        raise Conflict("This key is already registered.", code="api_key_exists")
    try:
        with transaction.atomic():
            api_key = ApiKey.objects.create(prefix=raw[:10], key_hash=hash_key(raw),
                                            hash_scheme=ApiKey.HashScheme.HMAC_SHA256,
                                            created_by=clean_actor(created_by, 100), **values)
            _keys_changed()
    except IntegrityError:
        raise Conflict("This key is already registered.", code="api_key_exists") from None
    return api_key, raw


def _locked_key(api_key_id: uuid.UUID | str) -> ApiKey:
    api_key = locks.lock_api_key(api_key_id)
    if api_key is None:
        raise NotFound("No API key with this id.", code="api_key_not_found")
    return api_key


def api_key_update(*, api_key_id: uuid.UUID | str, fields: dict[str, Any],
                   grantor: Grantor | None = None) -> ApiKey:
    """Change a key's name, scopes, rate limit or expiry (the admin). Locks the key; the result
    must be a key ``grantor`` could grant. Raises NotFound, ValidationFailed, Forbidden."""
    values = _clean_key_fields(fields)
    with transaction.atomic():
        api_key = _locked_key(api_key_id)
        for name, value in values.items():
            setattr(api_key, name, value)
        _check_grant(grantor, scopes=api_key.scopes, expires_at=api_key.expires_at,
                     rate_limit=api_key.rate_limit)
        api_key.save(update_fields=list(values) or None)
        _keys_changed()
    return api_key


def api_key_revoke(*, api_key_id: uuid.UUID | str, grantor: Grantor | None = None) -> ApiKey:
    """Revoke a key at once in every process (its secrets, current and previous, stop working).
    Revoking a revoked key changes nothing. Locks the key; ``grantor`` must be able to grant it
    (a key cannot revoke a broader one). Raises NotFound (404), Forbidden (403)."""
    with transaction.atomic():
        api_key = _locked_key(api_key_id)
        _check_grant(grantor, scopes=api_key.scopes, expires_at=api_key.expires_at,
                     rate_limit=api_key.rate_limit)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.previous_key_hash, api_key.previous_hash_scheme, api_key.previous_expires_at = (
                None, "", None)
            api_key.save(update_fields=["revoked_at", "previous_key_hash", "previous_hash_scheme",
                                        "previous_expires_at"])
            _keys_changed()
    return api_key


def api_key_rotate(*, api_key_id: uuid.UUID | str, grace_seconds: int = 0,
                   grantor: Grantor | None = None) -> tuple[ApiKey, str]:
    """Give a key a new secret and return it (shown once). The secret it replaces keeps working for
    ``grace_seconds`` (0: it stops at once); a secret replaced by an earlier rotation stops now.
    Locks the key; ``grantor`` must be able to grant it. Raises NotFound (404), Forbidden (403),
    Conflict ``api_key_revoked`` (409), ValidationFailed (422) for a grace out of 0..30 days."""
    if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, int) \
            or not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ValidationFailed("grace_seconds: an integer from 0 to 2592000 (30 days).",
                               details={"grace_seconds": [f"From 0 to {MAX_GRACE_SECONDS}."]})
    raw = new_secret()
    with transaction.atomic():
        api_key = _locked_key(api_key_id)
        _check_grant(grantor, scopes=api_key.scopes, expires_at=api_key.expires_at,
                     rate_limit=api_key.rate_limit)
        if api_key.revoked_at is not None:
            raise Conflict("A revoked key cannot be rotated.", code="api_key_revoked")
        now = timezone.now()
        if grace_seconds:
            api_key.previous_key_hash, api_key.previous_hash_scheme = (api_key.key_hash,
                                                                       api_key.hash_scheme)
            api_key.previous_expires_at = now + timedelta(seconds=grace_seconds)
        else:
            api_key.previous_key_hash, api_key.previous_hash_scheme, api_key.previous_expires_at = (
                None, "", None)
        api_key.key_hash, api_key.hash_scheme = hash_key(raw), ApiKey.HashScheme.HMAC_SHA256
        api_key.prefix, api_key.rotated_at = raw[:10], now
        api_key.save(update_fields=["key_hash", "hash_scheme", "previous_key_hash",
                                    "previous_hash_scheme",
                                    "previous_expires_at", "prefix", "rotated_at"])
        _keys_changed()
    return api_key, raw


def api_key_upgrade_hash(*, api_key_id: uuid.UUID | str, old_hash: str, old_scheme: str,
                         new_hash: str) -> bool:
    """Replace a legacy hash by the keyed one (the first use of a legacy key, when its secret is at
    hand). One conditional UPDATE; a failure is logged, the request goes on. The principal does not
    change, so no generation bump."""
    try:
        return bool(ApiKey.objects.filter(pk=api_key_id, key_hash=old_hash, hash_scheme=old_scheme)
                    .update(key_hash=new_hash, hash_scheme=ApiKey.HashScheme.HMAC_SHA256))
    except DatabaseError:
        logger.warning("could not re-hash a legacy API key", exc_info=True)
        return False


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
MAX_STORED_PATH = 255
# Secrets the platform issues (API keys, webhook signing secrets: a prefix, then URL-safe
# characters); a stored answer never keeps one, declared or not (redact_secrets and the marker
# test of idempotency_complete both read the prefixes from here).
_SECRET_PREFIXES = (KEY_PREFIX, "whsec_")  # whsec_: webhooks.services.new_secret
_SECRET_VALUE = re.compile(rf"^({'|'.join(_SECRET_PREFIXES)})[A-Za-z0-9_\-]{{16,}}$")
_SECRET_MARKERS = tuple(f'"{prefix}'.encode() for prefix in _SECRET_PREFIXES)


def stored_path(path: str) -> str:
    """The path as an idempotency record keeps it: as is when short and printable, else a readable
    prefix and the SHA-256 of the whole path — bounded, so no path can make the INSERT fail, and
    still different for different paths."""
    if len(path) <= MAX_STORED_PATH and path.isprintable():
        return path
    digest = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()
    readable = "".join(c if c.isprintable() else "?" for c in path[:180])
    return f"{readable}#sha256={digest}"


def redact_secrets(body: Any, fields: Iterable[str] = ()) -> Any:
    """``body`` with every declared secret field (``"secret"``, or dotted: ``"key.value"``) and
    every value shaped like a secret this platform issues (``sk_…``, ``whsec_…``) replaced by None.
    A replay then answers the same status and data, the secret as null (SPEC §4.7)."""
    body = _redact_values(body)
    for dotted in fields:
        node, *path, last = [body, *dotted.split(".")]
        for name in path:
            node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            node[last] = None
    return body


def _redact_values(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _redact_values(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_redact_values(value) for value in node]
    if isinstance(node, str) and _SECRET_VALUE.match(node):
        return None
    return node


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

    Runs in autocommit so a concurrent request sees the claim at once. The claim's commit does not
    wait for its WAL flush (``synchronous_commit`` off for that statement alone): the change it
    guards commits synchronously afterwards, which flushes the claim with it, so a crash can only
    lose a claim whose change never happened (and a retry then runs it). The answer is stored with
    a synchronous commit. Raises IdempotencyKeyReused
    (422) for a different body or endpoint, IdempotencyInFlight (409) while the first still runs.
    A claim older than its lease (the process died) is taken over."""
    now = timezone.now()
    path = stored_path(path)
    table = IdempotencyRecord._meta.db_table
    for _ in range(3):
        # One statement claims a new key (the common case); a conflict means it exists already.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table} (owner, key, method, path, request_hash, status,
                                     response_headers, locked_until, created_at, expires_at)
                SELECT %s::text, %s::text, %s::text, %s::text, %s::text, %s::text, '{{}}'::jsonb,
                       %s::timestamptz, %s::timestamptz, %s::timestamptz
                FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush_wait
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


# A JSON "\u0000" escape: an odd number of backslashes before u0000 (an even one is a literal
# backslash followed by the text "u0000").
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def idempotency_complete(*, record_id: int, status: int, body: Any, headers: dict[str, str],
                         secret_fields: Iterable[str] = ()) -> None:
    """Store the final answer, its secrets redacted (:func:`redact_secrets`). ``body`` goes in as
    orjson-encoded JSON (it can be a whole order)."""
    from stateset.encoding import dumps

    encoded = dumps(body)
    # A value shaped like a secret is a JSON string starting with one of the prefixes (its
    # characters need no escaping): a body without one, and without declared secret fields, is
    # stored as encoded instead of being walked (a whole order is hundreds of values).
    if secret_fields or any(marker in encoded for marker in _SECRET_MARKERS):
        encoded = dumps(redact_secrets(body, secret_fields))
    # jsonb cannot hold "\u0000", which an error answer echoing a client's bad input may carry:
    # the replay shows U+FFFD there instead of the INSERT failing (and the answer with it).
    stored = _JSON_NUL.sub(r"\1\\ufffd", encoded.decode())

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {IdempotencyRecord._meta.db_table} SET status = %s, response_status = %s, "
            "response_body = %s::jsonb, response_headers = %s::jsonb WHERE id = %s",
            [IdempotencyRecord.Status.COMPLETED, status, stored, dumps(headers).decode(),
             record_id],
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
