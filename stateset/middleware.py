"""Request plumbing: request ids and the request log line, body-size limit, compression."""

from __future__ import annotations

import functools
import gzip
import io
import logging
import re
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import brotli
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import DataError, connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import Resolver404, resolve
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin

from stateset import db as db_routing
from stateset import metrics
from stateset.api.auth import raw_key
from stateset.api.errors import annotate_data_error, json_error_response
from stateset.logging import request_context

logger = logging.getLogger("stateset.request")
_NAMED_GROUP = re.compile(r"\(\?P<([^>]+)>[^()]*\)")
_CONVERTER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class _QueryCounter:
    """Counts the request's queries, and notes on a DataError which field's value the database
    refused (the 422 names it). The ``try`` costs nothing until a statement fails."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool,
                 context: Any) -> Any:
        self.count += 1
        try:
            return execute(sql, params, many, context)
        except DataError as exc:
            annotate_data_error(exc, sql, params, many)
            raise


def route_of(request: HttpRequest) -> str:
    """The URL pattern (``/api/v1/orders/{id}``), not the raw path: bounded metric cardinality."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "<unmatched>"
    return _route_label(match.route or "")


@functools.lru_cache(maxsize=1024)  # one entry per URL pattern
def _route_label(route: str) -> str:
    route = _NAMED_GROUP.sub(r"{\1}", route)  # DRF's router: (?P<pk>[^/.]+) → {pk}
    route = _CONVERTER.sub(r"{\1}", route)
    return "/" + route.replace("^", "").replace("$", "")


class RequestContextMiddleware:
    """Accepts or generates ``X-Request-ID``, echoes it, opens the request's database scope
    (read-your-writes: ``stateset.db.request_scope``), and writes one JSON log line per request
    with route, status, duration and query count."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]  # ours, read by the envelope and logs
        started = time.perf_counter()
        counter = _QueryCounter()
        token = request_context.set({"request_id": request_id})
        # Unsafe methods read from the primary from the start (their reads decide their writes); a
        # GET joins them at its first write. Staff in the back office read what they just saved.
        primary = (request.method not in ("GET", "HEAD", "OPTIONS")
                   or request.path.startswith("/admin/"))
        try:
            with db_routing.request_scope(primary=primary), connections["default"].execute_wrapper(
                counter):
                response = self.get_response(request)
        finally:
            request_context.reset(token)
        duration = time.perf_counter() - started
        response["X-Request-ID"] = request_id
        route = route_of(request)
        metrics.observe_request(request.method or "", route, response.status_code, duration)
        fields = {
            "request_id": request_id,
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(duration * 1000, 2),
            "db_queries": counter.count,
        }
        if duration * 1000 >= settings.SLOW_REQUEST_MS:
            logger.warning("slow request", extra={"fields": fields})
        elif not request.path.startswith(("/health", "/metrics")):
            logger.info("request", extra={"fields": fields})
        return response


class BodyLimitMiddleware:
    """413 as a JSON envelope before anything reads an oversized body (SPEC §3, 1 MiB default)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error_response(request, 400, "bad_request",
                                       "Invalid Content-Length header.")
        if request.path_info in settings.IMPORTS_UPLOAD_PATHS and request.method == "POST":
            # An import streams its file to disk (imports.api, its admin) under its own limit.
            limit = settings.IMPORTS_MAX_BYTES
            if not length and request.META.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
                return json_error_response(request, 411, "length_required",
                                           "Send the file with a Content-Length header.")
        if length > limit:
            return json_error_response(request, 413, "payload_too_large",
                                       f"The request body exceeds {limit} bytes.",
                                       {"limit_bytes": limit})
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            # No length to trust. Django reads CONTENT_LENGTH bytes (none, here), so the body would
            # silently be empty: read it from the server's decoded stream instead, at most limit + 1
            # bytes, and keep it as the body. A server that does not decode chunked bodies (says no
            # wsgi.input_terminated, as gunicorn does) cannot be read safely: 411.
            if not request.META.get("wsgi.input_terminated"):
                return json_error_response(request, 411, "length_required",
                                           "Send the body with a Content-Length header.")
            body = _read_at_most(request.META["wsgi.input"], limit + 1)
            if len(body) > limit:
                return json_error_response(request, 413, "payload_too_large",
                                           f"The request body exceeds {limit} bytes.",
                                           {"limit_bytes": limit})
            request._stream = io.BytesIO(body)
            request.META["CONTENT_LENGTH"] = str(len(body))
            request.META.pop("HTTP_TRANSFER_ENCODING", None)
        return self.get_response(request)


def _read_at_most(stream, size: int) -> bytes:  # type: ignore[no-untyped-def]
    chunks, left = [], size
    while left > 0:
        chunk = stream.read(min(left, 64 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


_COMPRESSIBLE = re.compile(
    r"^(text/|application/(json|javascript|xml|vnd\.oai\.openapi)|image/svg)")
MIN_COMPRESS_BYTES = 1024
# Brotli's quality 1 for answers made per request: on a 10 KB page of 20 orders 41 µs and
# 2,064 bytes against 166 µs and 1,828 bytes at quality 4 (gzip at level 5: 115 µs, 1,970 bytes).
BROTLI_QUALITY = 1


def _accepts(header: str, coding: str) -> bool:
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() != coding:
            continue
        q = params.strip()
        return not (q.startswith("q=") and q[2:].strip() in {"0", "0.0", "0.00", "0.000"})
    return False


class CompressionMiddleware:
    """Brotli when the client accepts it, else gzip, for bodies of 1 KiB and more (SPEC §3)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        accept = request.META.get("HTTP_ACCEPT_ENCODING", "")
        if not accept or response.has_header("Content-Encoding"):
            return response
        content_type = response.get("Content-Type", "")
        if not _COMPRESSIBLE.match(content_type):
            return response
        patch_vary_headers(response, ("Accept-Encoding",))
        if isinstance(response, StreamingHttpResponse):
            if _accepts(accept, "gzip"):
                response.streaming_content = _gzip_stream(response.streaming_content)
                response["Content-Encoding"] = "gzip"
                del response["Content-Length"]
            return response
        body = response.content
        if len(body) < MIN_COMPRESS_BYTES:
            return response
        if _accepts(accept, "br"):
            compressed, coding = brotli.compress(body, quality=BROTLI_QUALITY), "br"
        elif _accepts(accept, "gzip"):
            compressed, coding = gzip.compress(body, compresslevel=5, mtime=0), "gzip"
        else:
            return response
        if len(compressed) >= len(body):
            return response
        response.content = compressed
        response["Content-Length"] = str(len(compressed))
        response["Content-Encoding"] = coding
        return response


def _gzip_stream(chunks: Iterable[bytes | str]) -> Iterator[bytes]:
    stream = zlib.compressobj(5, zlib.DEFLATED, 31)  # wbits 31: gzip container
    for chunk in chunks:
        data = stream.compress(chunk if isinstance(chunk, bytes) else chunk.encode())
        if data:
            yield data
    yield stream.flush()


# --- the session stack, for browsers only --------------------------------------------------------


# Probes and scrapes (SPEC §8): never a browser page, never a session.
PROBE_PATHS = frozenset({"/health", "/health/ready", "/metrics", "/metrics/json"})


def sessionless(request: HttpRequest) -> bool:
    """A request no session serves: an API request that carries a key (the key authenticates it or
    it is a 401; the staff session is consulted only for a request without one,
    ``stateset.api.auth``), or a probe or scrape (:data:`PROBE_PATHS`). No session, session user
    or message store is read for it; CSRF, security and frame headers still apply."""
    decided: bool | None = request.__dict__.get("_sessionless")
    if decided is None:  # three middlewares ask; the headers are read once
        path = request.path_info
        decided = request._sessionless = (  # type: ignore[attr-defined]
            path in PROBE_PATHS or (path.startswith("/api/") and raw_key(request) is not None))
    return decided


class _BrowserOnly(MiddlewareMixin):
    """Mixed in before one of Django's middlewares: it does nothing for :func:`sessionless`
    requests."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if sessionless(request):
            return self.get_response(request)  # type: ignore[return-value]  # sync only
        return super().__call__(request)  # type: ignore[return-value]  # sync only


class BrowserSessionMiddleware(_BrowserOnly, SessionMiddleware):
    """No session lookup and no ``Vary: Cookie`` for an API key's request."""


class BrowserAuthenticationMiddleware(_BrowserOnly, AuthenticationMiddleware):
    """An API key's request gets its ``request.user`` (the key's principal) from the API's
    authentication."""


class BrowserMessageMiddleware(_BrowserOnly, MessageMiddleware):
    """Admin messages are the back office's."""
