"""API keys and scopes (SPEC §3), below the API: how a secret is hashed, what a scope grants, which
key a secret names, and the process-local cache of principals. The API's authentication
(``stateset.api.auth``) and the key services (``stateset.services``) both build on this module.

Hashes. A secret is ``sk_`` + 32 random bytes (URL-safe), stored as HMAC-SHA256 keyed with a server
pepper (``[app] key_pepper`` / ``STATESET_KEY_PEPPER``, else derived from ``SECRET_KEY``). Rows made
before keyed hashing hold a plain SHA-256 (``hash_scheme = "sha256"``); a lookup tries both digests
in one indexed query, and the first successful use of a legacy key re-hashes it (the raw secret is
in hand only then). See docs/decisions.md.

Cache. Authentication costs no database query on the hot path: a process keeps digest → principal.
Every change to any key (create, update, revoke, rotate) replaces a *generation token* in Redis
after its commit; each request reads the token (one Redis GET) and a process whose entries were
filled under another token drops them all. So once a revocation has returned, no worker serves the
key. Expiry (of a key, or of a rotated secret's grace period) is checked against the clock on every
request, so it needs no invalidation. When the token cannot be read (Redis down; no Redis outside
tests), nothing is cached: every request reads the key from PostgreSQL.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger("stateset.auth")

KEY_PREFIX = "sk_"
RESOURCES = ("orders", "inventory", "catalog", "customers", "fulfillment", "returns", "webhooks",
             "keys", "imports")
ACTIONS = ("read", "write", "manage")
# Granted by name only, never through a wildcard: trusting a client's prices is a business
# decision, not an access level (SPEC §3). ``*`` and ``orders:*`` do not imply it.
NAMED_ONLY_SCOPES = frozenset({"orders:set_prices"})

HMAC_SHA256 = "hmac-sha256"
SHA256 = "sha256"  # legacy: keys created before keyed hashing
HASH_SCHEMES = (HMAC_SHA256, SHA256)


# --- secrets and hashes --------------------------------------------------------------------------


def new_secret() -> str:
    return f"{KEY_PREFIX}{secrets.token_urlsafe(32)}"


@functools.lru_cache(maxsize=4)
def _pepper(configured: str, secret_key: str) -> bytes:
    if configured:
        return configured.encode()
    # Derived rather than SECRET_KEY itself, so the HMAC key is used for nothing else.
    return hmac.new(secret_key.encode(), b"stateset.api-key-pepper", hashlib.sha256).digest()


def hash_key(raw: str, scheme: str = HMAC_SHA256) -> str:
    """The stored form of a secret (64 hex characters) under ``scheme``."""
    if scheme == SHA256:
        return hashlib.sha256(raw.encode()).hexdigest()
    pepper = _pepper(settings.API_KEY_PEPPER, settings.SECRET_KEY)
    return hmac.new(pepper, raw.encode(), hashlib.sha256).hexdigest()


def candidate_hashes(raw: str) -> dict[str, str]:
    """The digest of ``raw`` under every scheme a stored row may use."""
    return {scheme: hash_key(raw, scheme) for scheme in HASH_SCHEMES}


# --- scopes --------------------------------------------------------------------------------------


def scope_is_valid(scope: str) -> bool:
    if scope == "*" or scope in NAMED_ONLY_SCOPES:
        return True
    resource, sep, action = scope.partition(":")
    return bool(sep) and resource in (*RESOURCES, "*") and action in (*ACTIONS, "*")


def all_scopes() -> list[str]:
    """Every valid scope, wildcards included (the API's enum)."""
    patterns = [f"{resource}:{action}" for resource in (*RESOURCES, "*")
                for action in (*ACTIONS, "*")]
    return ["*", *patterns, *sorted(NAMED_ONLY_SCOPES)]


def _parts(scope: str) -> tuple[str, str]:
    if scope == "*":
        return "*", "*"
    resource, _, action = scope.partition(":")
    return resource, action


def _covers(granted: str, required: str) -> bool:
    if required in NAMED_ONLY_SCOPES or granted in NAMED_ONLY_SCOPES:
        return granted == required
    g_resource, g_action = _parts(granted)
    r_resource, r_action = _parts(required)
    return (g_resource in ("*", r_resource)
            and (g_action in ("*", r_action)
                 or (g_action == "manage" and r_action in ("read", "write"))))


def scope_allows(granted: Iterable[str], required: str) -> bool:
    """``orders:write`` is granted by ``*``, ``orders:*``, ``*:write`` or itself; ``manage`` also
    grants read and write on its resource. ``orders:set_prices`` is granted only by itself.

    ``required`` may be a wildcard too: ``orders:*`` is granted only by ``orders:*`` or ``*`` (a
    key holding orders:read and orders:write does not hold every action of orders). That is the
    rule for handing out scopes: a key grants only scopes it holds."""
    return any(_covers(scope, required) for scope in granted)


def scopes_not_held(granted: Iterable[str], requested: Iterable[str]) -> list[str]:
    granted = tuple(granted)
    return [scope for scope in requested if not scope_allows(granted, scope)]


# --- principals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPrincipal:
    """What ``request.user`` is for a request authenticated by an API key."""

    id: str
    name: str
    scopes: tuple[str, ...]
    rate_limit: str
    expires_at: datetime | None
    # Set when the secret used is the key's previous one (after a rotation): valid until then.
    grace_until: datetime | None = None

    is_authenticated = True
    is_staff = False
    is_superuser = False
    is_active = True

    @property
    def owner(self) -> str:
        return f"key:{self.id}"

    def __str__(self) -> str:
        return f"api-key:{self.name}"


@dataclass(frozen=True)
class Grantor:
    """Who hands out or manages a key, with what they hold (a key grants only what it holds)."""

    scopes: tuple[str, ...]
    expires_at: datetime | None = None
    rate_limit: str = ""


_LOOKUP_FIELDS = ("id", "name", "scopes", "rate_limit", "expires_at", "key_hash", "hash_scheme",
                  "previous_key_hash", "previous_hash_scheme", "previous_expires_at")


def lookup(raw: str) -> KeyPrincipal | None:
    """The live (unrevoked) key whose current secret, or previous secret within its grace period,
    is ``raw``; read from the primary (one query on the two unique hash indexes). A legacy
    SHA-256 row found by its current secret is re-hashed with the HMAC on the way."""
    from django.db.models import Q

    from stateset.models import ApiKey

    digests = candidate_hashes(raw)
    # From the primary, never a replica: a lagging replica would still show a revoked key alive,
    # and the answer is cached.
    rows = list(
        ApiKey.objects.using("default").filter(revoked_at__isnull=True)
        .filter(Q(key_hash__in=digests.values())
                | Q(previous_key_hash__in=digests.values(), previous_expires_at__gt=timezone.now()))
        .values(*_LOOKUP_FIELDS)[:2]
    )
    # The digest must be the row's own scheme's: an HMAC value never matches a legacy row.
    for row in rows:
        if _matches(row["key_hash"], row["hash_scheme"], digests):
            if row["hash_scheme"] != HMAC_SHA256:
                _upgrade_hash(row, digests)
            return _principal(row, grace_until=None)
    for row in rows:
        if _matches(row["previous_key_hash"], row["previous_hash_scheme"], digests):
            return _principal(row, grace_until=row["previous_expires_at"])
    return None


def _matches(stored: str | None, scheme: str, digests: dict[str, str]) -> bool:
    expected = digests.get(scheme)
    return stored is not None and expected is not None and hmac.compare_digest(stored, expected)


def _principal(row: dict[str, Any], *, grace_until: datetime | None) -> KeyPrincipal:
    return KeyPrincipal(id=str(row["id"]), name=row["name"], scopes=tuple(row["scopes"]),
                        rate_limit=row["rate_limit"], expires_at=row["expires_at"],
                        grace_until=grace_until)


def _upgrade_hash(row: dict[str, Any], digests: dict[str, str]) -> None:
    from stateset import services

    services.api_key_upgrade_hash(api_key_id=row["id"], old_hash=row["key_hash"],
                                  old_scheme=row["hash_scheme"], new_hash=digests[HMAC_SHA256])


def principal_for_key(raw: str) -> KeyPrincipal | None:
    """The principal ``raw`` authenticates as, or None. Served from the process cache while the
    generation token is unchanged; a rotated secret past its grace period is None at once."""
    return principal_and_count(raw)[0]


def principal_and_count(
    raw: str, counter: Callable[[KeyPrincipal], tuple[str, int] | None] | None = None,
) -> tuple[KeyPrincipal | None, tuple[str, int, int] | None]:
    """:func:`principal_for_key`, and a counter moved in the same Redis round trip as the
    generation token's read: ``counter`` names, for the principal this process last cached for
    ``raw`` (before knowing whether it is still current), a counter key of
    ``stateset.cache.increment`` and its timeout (the request's rate-limit window). Returns the
    principal and ``(counter key, new value, timeout)``, or None for the count when nothing was
    counted (no cached principal, no Redis): the caller then counts on its own, and compares the
    key, since the principal may have changed with the generation."""
    digest = hash_key(raw)
    plan = None
    if counter is not None:
        candidate = key_cache.peek(digest)
        plan = counter(candidate) if candidate is not None else None
    counted = None
    if plan is None:
        token = generation.current()
    else:
        token, used = generation.current_and_count(*plan)
        counted = None if used is None else (plan[0], used, plan[1])
    principal: KeyPrincipal | None
    hit = False
    if token is not None:
        hit, principal = key_cache.get(digest, token)
    if not hit:
        principal = lookup(raw)
        if token is not None:
            key_cache.put(digest, principal, token)
    if (principal is not None and principal.grace_until is not None
        and principal.grace_until <= timezone.now()):
        return None, counted
    return principal, counted


# --- the cache and its generation ----------------------------------------------------------------


class _Generation:
    """A token that every change to any key replaces: in Redis (shared by every process) or, for
    the single-process test run without Redis, in this process. ``current()`` is None when the
    token cannot be known: nothing may be cached then."""

    key = "apikeys:generation"
    # After a Redis error, skip Redis (and the cache) this long, so a hanging Redis costs one
    # request its timeout, not every request.
    breaker_seconds = 5.0

    def __init__(self) -> None:
        self._local = uuid.uuid4().hex
        self._skip_until = 0.0

    def _redis(self) -> tuple[Any, str]:
        from django.core.cache import cache
        from django_redis import get_redis_connection

        return get_redis_connection("default"), cache.make_key(self.key)

    def current(self) -> str | None:
        mode = settings.API_KEY_CACHE
        if mode == "local":
            return self._local
        if mode != "redis" or time.monotonic() < self._skip_until:
            return None
        try:
            client, key = self._redis()
            token = client.get(key)
            if token is None:  # first use, or Redis lost it: a fresh token, never an old one
                client.set(key, uuid.uuid4().hex, nx=True)
                token = client.get(key)
        except Exception:
            self._skip_until = time.monotonic() + self.breaker_seconds
            logger.warning("API-key generation unreadable: authenticating from the database",
                           exc_info=True)
            return None
        return token.decode() if isinstance(token, bytes) else token

    def current_and_count(self, counter: str, timeout: int) -> tuple[str | None, int | None]:
        """``current()``, with the cache counter ``counter`` moved by one in the same pipeline
        (``stateset.cache.queue_increment``: created at 1 expiring after ``timeout`` seconds):
        one round trip for two answers. The count is None when Redis is not the
        generation's store or could not be read."""
        if settings.API_KEY_CACHE != "redis" or time.monotonic() < self._skip_until:
            return self.current(), None
        from stateset.cache import queue_increment

        try:
            client, key = self._redis()
            pipe = client.pipeline(transaction=False)
            pipe.get(key)
            queue_increment(pipe, counter, initial=1, timeout=timeout)
            # Each answer on its own: a counter Redis refuses (not an integer) is the view's to
            # count again, not a reason to stop reading the generation.
            token, _, used = pipe.execute(raise_on_error=False)
            if isinstance(token, Exception):
                raise token
        except Exception:
            self._skip_until = time.monotonic() + self.breaker_seconds
            logger.warning("API-key generation unreadable: authenticating from the database",
                           exc_info=True)
            return None, None
        count = None if isinstance(used, Exception) else int(used)
        if token is None:  # first use, or Redis lost it: current() makes a fresh token
            return self.current(), count
        return (token.decode() if isinstance(token, bytes) else token), count

    def bump(self) -> None:
        """Every process drops its cached principals before its next request."""
        self._local = uuid.uuid4().hex
        key_cache.clear_principals()
        if settings.API_KEY_CACHE != "redis":
            return
        try:
            client, key = self._redis()
            client.set(key, uuid.uuid4().hex)
        except Exception:
            # Other processes that can read Redis keep their entries until their TTL (10 s).
            logger.error("API-key generation not bumped: other workers may serve a changed key "
                         "for up to %s s", _KeyCache.ttl, exc_info=True)


class _KeyCache:
    """Process-local cache of key digest → principal (None for an unknown digest), valid for one
    generation token. ``ttl`` is only a backstop for a bump that could not reach Redis."""

    ttl = 10.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, KeyPrincipal | None]] = {}
        self._token: str | None = None
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, token: str) -> tuple[bool, KeyPrincipal | None]:
        if token != self._token:
            with self._lock:
                if token != self._token:
                    self._entries = {}
                    self._token = token
            return False, None
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def peek(self, digest: str) -> KeyPrincipal | None:
        """The principal last cached for ``digest`` in any generation, current or not (None when
        there is none): what a request can plan with before the generation is read."""
        entry = self._entries.get(digest)
        return None if entry is None else entry[1]

    def put(self, digest: str, principal: KeyPrincipal | None, token: str) -> None:
        with self._lock:
            if token != self._token:  # the generation moved while this request read the row
                return
            if len(self._entries) > 10_000:
                self._entries = {}
            self._entries[digest] = (time.monotonic() + self.ttl, principal)

    def should_touch(self, key_id: str) -> bool:
        """At most one ``last_used_at`` update per key per minute from this process."""
        now = time.monotonic()
        with self._lock:
            if self._touched.get(key_id, 0.0) > now:
                return False
            self._touched[key_id] = now + 60.0
            return True

    def clear_principals(self) -> None:
        with self._lock:
            self._entries = {}
            self._token = None

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
            self._token = None
            self._touched.clear()


key_cache = _KeyCache()
generation = _Generation()
