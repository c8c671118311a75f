"""The base every API view builds on: scopes, rate limits, idempotent POSTs, ETags, list answers.

A domain viewset looks like::

    class OrderViewSet(ApiViewSet):
        scope = "orders"                    # orders:read for GET, orders:write otherwise
        action_scopes = {"export": "orders:read"}

        def list(self, request):
            return self.list_response(selectors.order_list(...), params, render=...)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from stateset import services
from stateset.api.auth import rate_window
from stateset.cache import increment
from stateset.encoding import fingerprint
from stateset.errors import NotFound, PreconditionFailed, RateLimited, ValidationFailed
from stateset.pagination import ListParams, Page, paginate

IDEMPOTENCY_HEADER = "HTTP_IDEMPOTENCY_KEY"
REPLAYED_HEADER = "Idempotent-Replayed"
_STORED_HEADERS = ("ETag", "Location")


# What the mixin is mixed into, for the type checker (APIView's methods and attributes).
if TYPE_CHECKING:
    _View = APIView
else:
    _View = object


class ApiMixin(_View):
    """Mixed into APIView/ViewSet; see the module docstring."""

    scope: str | None = None
    action_scopes: dict[str, str] = {}
    # Fields of an answer that carry a secret shown only once, by action (or handler name for a
    # plain view): {"create": ("secret",)}. An idempotency record stores them as null.
    secret_fields: dict[str, tuple[str, ...]] = {}
    # A GET of one resource answers with its ETag through detail_response (and 304 to a current
    # If-None-Match); the schema documents that for every such route unless a view says no.
    etag_reads: bool = True

    # --- request pipeline -----------------------------------------------------------------------

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self._rate_limit(request)
        handler = getattr(self, "post", None)
        if request.method == "POST" and IDEMPOTENCY_HEADER in request.META and handler is not None:
            # Wrap the handler that dispatch() is about to look up, after auth and permissions ran.
            # A route without POST has none: dispatch() answers 405 as for any unserved method.
            self.post = self._idempotent(handler)

    def finalize_response(self, request: Request, response: Response, *args: Any,
                          **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        for header, value in getattr(request, "rate_limit_headers", {}).items():
            response[header] = value
        stray = getattr(request, "rate_counted", None)
        if stray is not None:
            # Counted with the key's authentication for a request the limit never judged (refused
            # before it: a scope, an expired key; or judged in another window): taken back, so
            # only the requests _rate_limit sees use the budget, as when it counted them itself.
            request.rate_counted = None  # type: ignore[attr-defined]  # ours
            key, _, timeout = stray
            try:
                increment(key, -1, initial=0, timeout=timeout)
            except Exception:  # cache down: the count expires with its window
                pass
        return response

    # --- rate limiting (SPEC §3: 429 with Retry-After and RateLimit-* headers) --------------------

    def _rate_limit(self, request: Request) -> None:
        window = rate_window(request.user)
        if window is None:
            return
        counted = getattr(request, "rate_counted", None)  # ApiKeyAuthentication's, same trip
        if counted is not None and counted[0] == window.key:
            used: int | None = counted[1]
            request.rate_counted = None  # type: ignore[attr-defined]  # used: finalize leaves it
        else:
            try:
                used = increment(window.key, initial=1, timeout=window.ttl)
            except Exception:  # cache down: do not turn an outage into 429s or 500s
                return
        if used is None:  # django-redis swallowed the outage
            return
        limit, reset = window.limit, window.reset
        request.rate_limit_headers = {  # type: ignore[attr-defined]  # read by finalize_response
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(max(limit - used, 0)),
            "RateLimit-Reset": str(reset),
        }
        if used > limit:
            raise RateLimited(retry_after=max(reset, 1),
                              message=f"Rate limit of {window.rate} exceeded.",
                              details={"limit": limit, "window_seconds": window.window})

    # --- idempotency (SPEC §3) -------------------------------------------------------------------

    def _idempotent(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
            key = request.META[IDEMPOTENCY_HEADER].strip()
            if not 1 <= len(key) <= 255 or not key.isprintable():
                raise ValidationFailed("Idempotency-Key must be 1 to 255 printable characters.",
                                       code="invalid_idempotency_key")
            # What the request says, not how its bytes are laid out: the parsed body (an upload's
            # size and digest) with sorted keys, and the query string (an import's kind, dry_run).
            body_hash = fingerprint({"query": sorted(request.query_params.lists()),
                                     "body": request.data})
            owner = getattr(request.user, "owner", None) or f"user:{request.user.pk}"
            assert request.method is not None  # the POST being wrapped
            claim = services.idempotency_claim(owner=owner, key=key, method=request.method,
                                               path=request.path, request_hash=body_hash)
            if claim.replay is not None:
                stored = claim.replay
                response = Response(stored.response_body, status=stored.response_status,
                                    headers=dict(stored.response_headers or {}))
                response[REPLAYED_HEADER] = "true"
                return response
            assert claim.record_id is not None
            try:
                response = handler(request, *args, **kwargs)
            except Exception as exc:
                response = self.handle_exception(exc)
            if response.status_code >= 500 or response.status_code == 429:
                services.idempotency_release(record_id=claim.record_id)
            else:
                headers = {h: response[h] for h in _STORED_HEADERS if h in response}
                secret = self.secret_fields.get(getattr(self, "action", None) or "post", ())
                services.idempotency_complete(record_id=claim.record_id,
                                              status=response.status_code,
                                              body=response.data, headers=headers,
                                              secret_fields=secret)
            return response

        return wrapped

    # --- answers ---------------------------------------------------------------------------------

    def list_response(self, queryset: QuerySet[Any], params: ListParams,
                      render: Callable[[Iterable[Any]], list[Any]], **kwargs: Any) -> Response:
        page: Page = paginate(queryset, params, render, **kwargs)
        return Response(page.as_dict())

    def detail_response(self, data: Any, *, version: int | None, status: int = 200) -> Response:
        """A single resource with its ``ETag`` (the row's version); ``If-None-Match`` → 304."""
        headers = {}
        if version is not None:
            etag = f'"{version}"'
            headers["ETag"] = etag
            if status == 200 and etag_matches(self.request.META.get("HTTP_IF_NONE_MATCH"), version):
                return Response(status=304, headers=headers)
        return Response(data, status=status, headers=headers)


def actor_of(request: Request) -> str:
    """Who made the request, as timeline and ledger rows record it (``api-key:<name>`` or the
    user)."""
    return str(request.user)[:100]


def parse_id(value: str, *, code: str = "not_found", message: str = "Not found.") -> uuid.UUID:
    """A path id as a UUID; anything else names no row, so it is the resource's own 404."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(message, code=code) from None


def etag_matches(header: str | None, version: int) -> bool:
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == str(version):
            return True
    return False


def expected_version(request: Request) -> int | None:
    """The version ``If-Match`` asks for (None when absent or ``*``). Services compare it inside the
    write, so a concurrent change between read and write still answers 412."""
    header = request.META.get("HTTP_IF_MATCH")
    if not header or header.strip() == "*":
        return None
    tag = header.split(",")[0].strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    try:
        return int(tag.strip('"'))
    except ValueError:
        raise PreconditionFailed(
            "If-Match must be an ETag from this resource, such as \"3\".") from None


class ApiView(ApiMixin, APIView):
    pass


class ApiViewSet(ApiMixin, viewsets.ViewSet):
    pass
