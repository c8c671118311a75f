"""API keys and scopes (SPEC §3), below the API: how a secret is hashed, what a scope grants, and
the process-local cache of principals. The API's authentication (``stateset.api.auth``) and the
key services (``stateset.services``) both build on this module."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime

KEY_PREFIX = "sk_"
RESOURCES = ("orders", "inventory", "catalog", "customers", "fulfillment", "returns", "webhooks",
             "imports")
ACTIONS = ("read", "write", "manage")


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def scope_is_valid(scope: str) -> bool:
    if scope == "*":
        return True
    resource, sep, action = scope.partition(":")
    return bool(sep) and resource in (*RESOURCES, "*") and action in (*ACTIONS, "*")


def scope_allows(granted: tuple[str, ...] | list[str], required: str) -> bool:
    """``orders:write`` is granted by ``*``, ``orders:*``, ``*:write`` or itself.
    ``manage`` also grants read and write on its resource."""
    resource, _, action = required.partition(":")
    for scope in granted:
        if scope == "*" or scope == required:
            return True
        g_resource, _, g_action = scope.partition(":")
        if g_resource not in ("*", resource):
            continue
        if g_action == "*" or g_action == action or (g_action == "manage" and action in ("read", "write")):
            return True
    return False


@dataclass(frozen=True)
class KeyPrincipal:
    """What ``request.user`` is for a request authenticated by an API key."""

    id: str
    name: str
    scopes: tuple[str, ...]
    rate_limit: str
    expires_at: datetime | None

    is_authenticated = True
    is_staff = False
    is_superuser = False
    is_active = True

    @property
    def owner(self) -> str:
        return f"key:{self.id}"

    def __str__(self) -> str:
        return f"api-key:{self.name}"


class _KeyCache:
    """Process-local cache of key hash → principal, so authentication costs no query on the hot path.
    A revoked key stops working within ``ttl`` seconds in every process."""

    ttl = 10.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, KeyPrincipal | None]] = {}
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[bool, KeyPrincipal | None]:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, digest: str, principal: KeyPrincipal | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + self.ttl, principal)

    def should_touch(self, key_id: str) -> bool:
        """At most one ``last_used_at`` update per key per minute from this process."""
        now = time.monotonic()
        with self._lock:
            if self._touched.get(key_id, 0.0) > now:
                return False
            self._touched[key_id] = now + 60.0
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._touched.clear()


key_cache = _KeyCache()
