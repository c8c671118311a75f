"""API keys: authentication (``X-API-Key`` / ``Authorization: Bearer``) and scopes (SPEC §3)."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission

from stateset.keys import KEY_PREFIX, KeyPrincipal, hash_key, key_cache, scope_allows

logger = logging.getLogger("stateset.auth")


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
    raw: str | None = request.META.get("HTTP_X_API_KEY")
    if raw:
        return raw.strip()
    header: str = request.META.get("HTTP_AUTHORIZATION", "")
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
            raise exceptions.AuthenticationFailed("This API key has expired.",
                                                  code="api_key_expired")
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
    overrides: dict[str, str] = getattr(view, "action_scopes", {}) or {}
    if action in overrides:
        return overrides[action]
    return f"{resource}:{'read' if request.method in SAFE_METHODS else 'write'}"
