"""API keys: authentication (``X-API-Key`` / ``Authorization: Bearer``) and scopes (SPEC §3).

- A staff session has exactly the scopes its Django permissions give
(:func:`scopes_for_permissions`).
- Failed key authentication is counted per client address (:data:`auth_failures`); past
  ``[api] auth_failure_limit`` every request from that address carrying a key is a 429 with
  ``Retry-After`` until the window ends, before any key is looked up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission

from stateset.cache import increment
from stateset.config import ConfigError, parse_rate
from stateset.errors import RateLimited
from stateset.keys import KEY_PREFIX, KeyPrincipal, key_cache, principal_and_count, scope_allows
from stateset.queue import enqueue

logger = logging.getLogger("stateset.auth")


def raw_key(request: Any) -> str | None:
    """The API key a request carries (``X-API-Key``, else ``Authorization: Bearer``), or None."""
    raw: str | None = request.META.get("HTTP_X_API_KEY")
    if raw:
        return raw.strip()
    header: str = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def client_address(request: Any) -> str:
    """The client's address: ``REMOTE_ADDR``, or behind ``[api] trusted_proxies`` reverse proxies
    that append to ``X-Forwarded-For`` (nginx's ``$proxy_add_x_forwarded_for``), the entry the
    outermost trusted proxy added. Entries further left are the client's own claim, never
    trusted."""
    meta = request.META
    hops = settings.API_TRUSTED_PROXIES
    if hops:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")
                     if part.strip()]
        if len(forwarded) >= hops:
            return str(forwarded[-hops])[:64]
    return str(meta.get("REMOTE_ADDR", ""))[:64]


class _AuthFailures:
    """Failed authentications per client address and window, shared across processes through the
    cache (one counter write per *failure*; successes cost one dict lookup). Each process remembers
    the addresses it has seen go over the limit, so a blocked address is refused without a cache
    round trip or a key lookup. Without the cache (down, or its breaker open) it counts
    in-process."""

    def __init__(self) -> None:
        self._blocked: dict[str, float] = {}
        self._local: dict[str, int] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        until = self._blocked.get(address)
        if until is None:
            return None
        left = until - time.time()
        if left <= 0:
            self._blocked.pop(address, None)
            return None
        return max(int(left + 0.999), 1)

    def record(self, address: str) -> int | None:
        """Count one failure; the seconds to wait when this one went over the limit, else None."""
        if not settings.API_AUTH_FAILURE_LIMIT:
            return None
        limit, window = parse_rate(settings.API_AUTH_FAILURE_LIMIT)
        now = int(time.time())
        start = now - now % window
        key = f"authfail:{address}:{window}:{start}"
        try:
            used = increment(key, initial=1, timeout=window + 1)
        except Exception:  # a cache error is no reason to let guesses through uncounted
            used = None
        if used is None:
            with self._lock:
                if len(self._local) > 10_000:
                    self._local.clear()
                used = self._local[key] = self._local.get(key, 0) + 1
        if used <= limit:
            return None
        with self._lock:
            if len(self._blocked) > 10_000:
                self._blocked.clear()
            self._blocked[address] = start + window
        logger.warning("authentication failures over the limit", extra={"fields": {
            "client": address, "failures": used, "window_seconds": window}})
        return max(start + window - now, 1)

    def clear(self) -> None:
        with self._lock:
            self._blocked.clear()
            self._local.clear()


auth_failures = _AuthFailures()


def _too_many_failures(retry_after: int) -> RateLimited:
    rate = settings.API_AUTH_FAILURE_LIMIT
    limit = parse_rate(rate)[0] if rate else None
    return RateLimited(retry_after=retry_after, limit=limit, code="too_many_failed_authentications",
                       message="Too many failed authentication attempts from this address; retry "
                               "later.")


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Any) -> tuple[KeyPrincipal, KeyPrincipal] | None:
        raw = raw_key(request)
        if raw is None:
            return None
        address = client_address(request)
        wait = auth_failures.retry_after(address)
        if wait is not None:
            raise _too_many_failures(wait)
        principal = None
        if raw.startswith(KEY_PREFIX) and len(raw) <= 200:
            # The key's rate-limit window is counted in the round trip that reads the key
            # generation (ApiMixin._rate_limit uses the count when the window is the same).
            principal, request.rate_counted = principal_and_count(raw, _rate_counter)
        if principal is None:
            self._failed(address)
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        if principal.expires_at is not None and principal.expires_at <= timezone.now():
            self._failed(address)
            raise exceptions.AuthenticationFailed("This API key has expired.",
                                                  code="api_key_expired")
        if key_cache.should_touch(principal.id):
            _schedule_touch(principal.id)
        return principal, principal

    @staticmethod
    def _failed(address: str) -> None:
        wait = auth_failures.record(address)
        if wait is not None:
            raise _too_many_failures(wait)

    def authenticate_header(self, request: Any) -> str:
        # Having a header makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="stateset"'


def _schedule_touch(key_id: str) -> None:
    from stateset.tasks import api_key_touch

    # Broker down or hung: last_used_at is best-effort, the request is not (bounded, breaker).
    enqueue(api_key_touch, key_id, timezone.now().isoformat())


@dataclass(frozen=True)
class RateWindow:
    """The rate-limit window a request counts in (SPEC §3): ``key`` is its cache counter."""

    rate: str
    limit: int
    window: int
    start: int
    now: int
    key: str

    @property
    def reset(self) -> int:
        return self.start + self.window - self.now

    @property
    def ttl(self) -> int:
        """How long the counter lives: the window and a second, so it outlasts its window."""
        return self.window + 1


def rate_window(user: Any, *, quiet: bool = False) -> RateWindow | None:
    """The window ``user``'s requests count in now (the key's own rate, else ``[api] rate_limit``),
    or None when nothing limits them. A key saved with a bad rate (the admin refuses them now)
    gets the default, with a warning unless ``quiet``."""
    rate = getattr(user, "rate_limit", "") or settings.API_RATE_LIMIT
    if not rate or not getattr(user, "is_authenticated", False):
        return None
    try:
        limit, window = parse_rate(rate)
    except ConfigError:
        if not quiet:
            logger.warning("unreadable rate limit on a key; the default applies", extra={
                "fields": {"owner": getattr(user, "owner", ""), "rate": rate[:40]}})
        if not settings.API_RATE_LIMIT:
            return None
        rate = settings.API_RATE_LIMIT
        limit, window = parse_rate(rate)
    now = int(time.time())
    start = now - now % window
    owner = getattr(user, "owner", f"user:{getattr(user, 'pk', '')}")
    return RateWindow(rate=rate, limit=limit, window=window, start=start, now=now,
                      key=f"ratelimit:{owner}:{window}:{start}")


def _rate_counter(principal: KeyPrincipal) -> tuple[str, int] | None:
    window = rate_window(principal, quiet=True)
    return None if window is None else (window.key, window.ttl)


class StaffSessionAuthentication(SessionAuthentication):
    """Staff logged into the admin may use the API (browsable renderer); CSRF is enforced."""

    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None or not result[0].is_staff:
            return None
        return result


# SPEC §3/§5: which API resource a Django permission speaks for. A domain app is its resource;
# on the platform and webhooks apps only the models that have an API resource count.
APP_RESOURCES = {app: app
                 for app in ("catalog", "customers", "inventory", "orders", "fulfillment",
                             "returns")}
MODEL_RESOURCES = {"webhooks.endpoint": "webhooks", "stateset.apikey": "keys"}
MANAGED_RESOURCES = frozenset({"webhooks", "keys"})  # their write scope is <resource>:manage
# Models whose writes are moves with their own endpoints (the views' ``staff_permissions``): a
# write permission on them gives no write scope, or adding a payment would let a session create
# and cancel orders.
MOVE_MODELS = frozenset({"orders.payment"})
_PERMISSION_ACTIONS = {"view": "read", "add": "write", "change": "write", "delete": "write"}


def scopes_for_permissions(permissions: Iterable[str]) -> tuple[str, ...]:
    """``{"orders.view_order", "catalog.change_product"}`` → ``("catalog:write", "orders:read")``:
    ``view_<model>`` gives ``<resource>:read``, ``add/change/delete_<model>`` ``<resource>:write``
    (``:manage`` for webhooks and keys). Custom permissions grant no scope: they name a move
    (``orders.record_payment``), not an access level, and the endpoint of that move accepts them
    from a staff session (:func:`staff_permission`); so do writes on :data:`MOVE_MODELS`."""
    scopes: set[str] = set()
    for permission in permissions:
        app, _, codename = permission.partition(".")
        verb, _, model = codename.partition("_")
        action = _PERMISSION_ACTIONS.get(verb)
        if action is None:
            continue
        resource = MODEL_RESOURCES.get(f"{app}.{model}") or (
            APP_RESOURCES.get(app) if app in APP_RESOURCES else None)
        if resource is None or (action == "write" and f"{app}.{model}" in MOVE_MODELS):
            continue
        if resource in MANAGED_RESOURCES and action == "write":
            action = "manage"
        scopes.add(f"{resource}:{action}")
    return tuple(sorted(scopes))


def granted_scopes(user: Any) -> tuple[str, ...]:
    if isinstance(user, KeyPrincipal):
        return user.scopes
    if not getattr(user, "is_active", False) or not getattr(user, "is_staff", False):
        return ()
    if user.is_superuser:
        return ("*",)
    cached = getattr(user, "_api_scopes", None)
    if cached is None:
        cached = user._api_scopes = scopes_for_permissions(user.get_all_permissions())
    return cached


class HasScope(BasePermission):
    """The view names its resource (``scope = "orders"``); safe methods need ``<resource>:read``,
    the rest ``<resource>:write``. A view may override per action with ``action_scopes``, and name
    the Django permission a staff session needs for a move with ``staff_permissions`` (SPEC §5:
    ``{"refund": "returns.refund_return"}``): for a session that permission replaces the scope, so
    a Support user who may change returns may not refund one, and a Warehouse user who may
    receive returns but not change them may receive one. API keys are judged by scopes only."""

    def has_permission(self, request: Any, view: Any) -> bool:
        required = required_scope(request, view)
        if required is None:
            return True
        if request.user is None or not getattr(request.user, "is_authenticated", False):
            raise exceptions.NotAuthenticated("Authentication required: send X-API-Key.")
        permission = staff_permission(request, view)
        if permission is not None:
            if not (request.user.is_staff and request.user.has_perm(permission)):
                raise exceptions.PermissionDenied(
                    f"This session lacks the permission {permission}.",
                    code="insufficient_scope")
            return True
        if not scope_allows(granted_scopes(request.user), required):
            raise exceptions.PermissionDenied(f"This key lacks the scope {required}.",
                                              code="insufficient_scope")
        return True


def required_scope(request: Any, view: Any) -> str | None:
    resource = getattr(view, "scope", None)
    if resource is None:
        return None
    action = getattr(view, "action", None)
    overrides: dict[str, str] = getattr(view, "action_scopes", {}) or {}
    if action in overrides:
        return overrides[action]
    return f"{resource}:{'read' if request.method in SAFE_METHODS else 'write'}"


def staff_permission(request: Any, view: Any) -> str | None:
    """The Django permission a staff session's write needs instead of a scope, when the view names
    one for the action (``staff_permissions``); None for API keys, reads and other actions."""
    if isinstance(request.user, KeyPrincipal) or request.method in SAFE_METHODS:
        return None
    permissions: dict[str, str] = getattr(view, "staff_permissions", {}) or {}
    return permissions.get(getattr(view, "action", None) or "")
