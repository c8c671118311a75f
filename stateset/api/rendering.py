"""JSON in and out: orjson, the success/error envelope, and content negotiation (SPEC §3)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from django.http import HttpRequest
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer

# Re-exported for the API modules.
from stateset.encoding import dumps as dumps
from stateset.encoding import loads as loads


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def meta_for(request: HttpRequest | None) -> dict[str, str]:
    request_id = getattr(request, "request_id", None) if request is not None else None
    return {"request_id": request_id or "", "timestamp": now_rfc3339()}


def envelope(request: HttpRequest | None, status: int, data: Any) -> dict[str, Any]:
    """Status < 400: ``data`` is the payload. Status >= 400: ``data`` is the error payload."""
    if status >= 400:
        return {"success": False, "error": data, "meta": meta_for(request)}
    return {"success": True, "data": data, "meta": meta_for(request)}


def envelope_bytes(request: HttpRequest | None, status: int, data: Any) -> bytes:
    return dumps(envelope(request, status, data))


class EnvelopeJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 by definition

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: Mapping[str, Any] | None = None) -> bytes:
        context = renderer_context or {}
        response = context.get("response")
        status = response.status_code if response is not None else 200
        if status in (204, 304):  # no body, by HTTP's rules
            return b""
        request = context.get("request")
        django_request = getattr(request, "_request", request)
        return envelope_bytes(django_request, status, data)


class StrictJSONParser(BaseParser):
    """orjson: rejects invalid UTF-8, NaN/Infinity and integers beyond 64 bits with a 400."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        body = stream.read()
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from None


class StaffBrowsableNegotiation(DefaultContentNegotiation):
    """The browsable renderer only for staff logged into the admin; everyone else gets JSON, so no
    HTML error page can reach an API client."""

    def select_renderer(self, request: Any, renderers: Iterable[BaseRenderer],
                        format_suffix: str | None = None) -> tuple[BaseRenderer, str]:
        offered = list(renderers)
        user = getattr(request._request, "user", None)
        if not (user is not None and getattr(user, "is_staff", False)):
            offered = [r for r in offered if not isinstance(r, BrowsableAPIRenderer)] or offered[:1]
            if len(offered) == 1:
                # Nothing to choose between: whatever Accept or ?format= says (an unsatisfiable
                # one included, see below), the answer is this renderer's.
                return offered[0], offered[0].media_type
        try:
            chosen: tuple[BaseRenderer, str] = super().select_renderer(request, offered,
                                                                       format_suffix)
            return chosen
        except Exception:
            # An unsatisfiable Accept header still gets the JSON envelope, not a 406 in another
            # format.
            json_renderer = offered[0]
            return json_renderer, json_renderer.media_type
