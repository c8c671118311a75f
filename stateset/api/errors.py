"""Domain errors and the one place that turns any failure into the error envelope (SPEC §3).

Services raise :class:`DomainError` subclasses; DRF and Django raise their own.
``exception_handler`` maps all of them to ``{"code", "message", "details"}`` with the right status;
the renderer adds
``success: false`` and ``meta``. Nothing else builds an error body.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from stateset.errors import DomainError, RateLimited

logger = logging.getLogger("stateset.api")


_DRF_CODES: dict[type[drf.APIException], tuple[int, str]] = {
    drf.ParseError: (400, "malformed_json"),
    drf.AuthenticationFailed: (401, "invalid_api_key"),
    drf.NotAuthenticated: (401, "authentication_required"),
    drf.PermissionDenied: (403, "forbidden"),
    drf.NotFound: (404, "not_found"),
    drf.MethodNotAllowed: (405, "method_not_allowed"),
    drf.NotAcceptable: (406, "not_acceptable"),
    drf.UnsupportedMediaType: (415, "unsupported_media_type"),
    drf.Throttled: (429, "rate_limited"),
}


def error_payload(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details if details is not None else {}}


def _drf_payload(exc: drf.APIException) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, drf.ValidationError):
        return 422, error_payload("validation_error", _first_message(exc.detail), exc.detail)
    for cls in type(exc).__mro__:
        if cls in _DRF_CODES:
            status, code = _DRF_CODES[cls]
            break
    else:
        status, code = exc.status_code, "error"
    detail_code = exc.get_codes() if isinstance(exc.detail, str) else None
    # A raise site may name a more precise code: PermissionDenied(code="insufficient_scope").
    if isinstance(detail_code, str) and detail_code not in {"error", "invalid", "not_found",
                                                            "permission_denied", "parse_error",
                                                            "authentication_failed",
                                                            "not_authenticated", "throttled",
                                                            "method_not_allowed",
                                                            "unsupported_media_type",
                                                            "not_acceptable"}:
        code = detail_code
    return status, error_payload(code, str(exc.detail))


def _first_message(detail: Any) -> str:
    """A readable one-liner for a validation error tree: ``items[0].quantity: must be > 0``."""

    def walk(node: Any, path: str) -> str | None:
        if isinstance(node, dict):
            for key, value in node.items():
                found = walk(value, f"{path}.{key}" if path else str(key))
                if found:
                    return found
        elif isinstance(node, list):
            for index, value in enumerate(node):
                if isinstance(value, (dict, list)):
                    found = walk(value, f"{path}[{index}]")
                else:
                    found = str(value) and (f"{path}: {value}" if path else str(value))
                if found:
                    return found
        elif node:
            return f"{path}: {node}" if path else str(node)
        return None

    return walk(detail, "") or "Invalid input."


def exception_to_payload(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Any exception → (status, error payload, extra headers). Unknown exceptions are a 500."""
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, DomainError):
        return exc.status, error_payload(exc.code, exc.message, exc.details), headers
    # Throttled.wait is set by its __init__ and missing from djangorestframework-stubs.
    if isinstance(exc, drf.Throttled) and (wait := getattr(exc, "wait", None)) is not None:
        headers["Retry-After"] = str(int(wait) + 1)
    if isinstance(exc, drf.APIException):
        status, payload = _drf_payload(exc)
        return status, payload, headers
    if isinstance(exc, Http404):
        return 404, error_payload("not_found", "Not found."), headers
    if isinstance(exc, DjangoPermissionDenied):
        return 403, error_payload("forbidden", "You do not have permission to do this."), headers
    if isinstance(exc, RequestDataTooBig):
        return 413, error_payload("payload_too_large", "The request body is too large."), headers
    if isinstance(exc, DjangoValidationError):
        details = (exc.message_dict if hasattr(exc, "error_dict")
                   else {"non_field_errors": exc.messages})
        return 422, error_payload("validation_error", _first_message(details), details), headers
    if isinstance(exc, IntegrityError):
        # Services translate the constraints they expect; reaching here means a race or a rule the
        # service did not check first. Still the client's conflict, never a 500.
        logger.warning("integrity error reached the API boundary", exc_info=exc)
        return 409, error_payload("conflict", "The request conflicts with existing data."), headers
    if isinstance(exc, DatabaseError):
        logger.error("database error", exc_info=exc)
        return 503, error_payload("service_unavailable",
                                  "The database is unavailable; retry."), headers
    logger.error("unhandled exception", exc_info=exc)
    return 500, error_payload("internal_error", "Internal server error."), headers


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's ``EXCEPTION_HANDLER``: every API failure passes here."""
    status, payload, headers = exception_to_payload(exc)
    if isinstance(exc, drf.APIException):
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
    set_rollback()
    return Response(payload, status=status, headers=headers)


def json_error_response(request: HttpRequest, status: int, code: str, message: str,
                        details: Any = None) -> HttpResponse:
    """An error envelope outside DRF (middleware, Django's handler404/500)."""
    from stateset.api.rendering import envelope_bytes

    body = envelope_bytes(request, status, error_payload(code, message, details))
    return HttpResponse(body, status=status, content_type="application/json")


# Django-level handlers (urls.py): unknown URLs and crashes outside DRF answer JSON too.
def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error_response(request, 400, "bad_request", "Bad request.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error_response(request, 403, "forbidden", "Forbidden.")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error_response(request, 404, "not_found", f"No route for {request.path}.")


def handler500(request: HttpRequest) -> HttpResponse:
    return json_error_response(request, 500, "internal_error", "Internal server error.")
