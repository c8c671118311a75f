"""API keys: authentication (``X-API-Key`` / ``Authorization: Bearer``) and scopes (SPEC §3)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission

logger = logging.getLogger("stateset.auth")

KEY_PREFIX = "sk_"
RESOURCES = ("orders", "inventory", "catalog", "customers", "fulfillment", "returns", "webhooks")
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


def principal_for_key(raw: str) -> KeyPrincipal | None:
    from stateset.models import ApiKey

    digest = hash_key(raw)
    hit, principal = key_cache.get(digest)
    if hit:
        return principal
    row = (
        ApiKey.objects.filter(key_hash=digest, revoked_at__isnull=True)
        .values("id", "name", "scopes", "rate_limit", "expires_at")
        .first()
    )
    principal = None
    if row is not None:
        principal = KeyPrincipal(id=str(row["id"]), name=row["name"], scopes=tuple(row["scopes"]),
                                 rate_limit=row["rate_limit"], expires_at=row["expires_at"])
    key_cache.put(digest, principal)
    return principal


def _raw_key(request: Any) -> str | None:
    raw = request.META.get("HTTP_X_API_KEY")
    if raw:
        return raw.strip()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Any) -> tuple[KeyPrincipal, KeyPrincipal] | None:
        raw = _raw_key(request)
        if raw is None:
            return None
        if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        principal = principal_for_key(raw)
        if principal is None:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        if principal.expires_at is not None and principal.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("This API key has expired.", code="api_key_expired")
        if key_cache.should_touch(principal.id):
            _schedule_touch(principal.id)
        return principal, principal

    def authenticate_header(self, request: Any) -> str:
        # Having a header makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="stateset"'


def _schedule_touch(key_id: str) -> None:
    from stateset.tasks import api_key_touch

    try:
        api_key_touch.delay(key_id, timezone.now().isoformat())
    except Exception:  # broker down: last_used_at is best-effort, the request is not
        logger.warning("could not schedule last_used_at update", exc_info=True)


class StaffSessionAuthentication(SessionAuthentication):
    """Staff logged into the admin may use the API (browsable renderer); CSRF is enforced."""

    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None or not result[0].is_staff:
            return None
        return result


def granted_scopes(user: Any) -> tuple[str, ...]:
    if isinstance(user, KeyPrincipal):
        return user.scopes
    if getattr(user, "is_superuser", False):
        return ("*",)
    if getattr(user, "is_staff", False):
        return ("*:read",)
    return ()


class HasScope(BasePermission):
    """The view names its resource (``scope = "orders"``); safe methods need ``<resource>:read``,
    the rest ``<resource>:write``. A view may override per action with ``action_scopes``."""

    def has_permission(self, request: Any, view: Any) -> bool:
        required = required_scope(request, view)
        if required is None:
            return True
        if request.user is None or not getattr(request.user, "is_authenticated", False):
            raise exceptions.NotAuthenticated("Authentication required: send X-API-Key.")
        if not scope_allows(granted_scopes(request.user), required):
            raise exceptions.PermissionDenied(f"This key lacks the scope {required}.",
                                              code="insufficient_scope")
        return True


def required_scope(request: Any, view: Any) -> str | None:
    resource = getattr(view, "scope", None)
    if resource is None:
        return None
    action = getattr(view, "action", None)
    overrides = getattr(view, "action_scopes", {}) or {}
    if action in overrides:
        return overrides[action]
    return f"{resource}:{'read' if request.method in SAFE_METHODS else 'write'}"
