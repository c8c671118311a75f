"""Domain errors and the one place that turns any failure into the error envelope (SPEC §3).

Services raise :class:`DomainError` subclasses; DRF and Django raise their own.
``exception_handler`` maps all of them to ``{"code", "message", "details"}`` with the right status;
the renderer adds
``success: false`` and ``meta``. Nothing else builds an error body.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, models
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from stateset.columns import column_refuses
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
        if exc.limit is not None:
            headers.update({"RateLimit-Limit": str(exc.limit), "RateLimit-Remaining": "0",
                            "RateLimit-Reset": str(exc.retry_after)})
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
    if isinstance(exc, DataError):
        # The database refused a value (out of range, too long, a NUL character, an overflowing
        # total): the client's input, not an outage. Still worth knowing which check was missing.
        field = getattr(exc, "stateset_field", None) or _diag_column(exc)
        reason = _data_error_reason(exc)
        logger.warning("database refused a value",
                       extra={"fields": {"field": field, "reason": reason}})
        message = f"{field}: {reason}" if field else reason
        return 422, error_payload("invalid_value", message,
                                  {field or "non_field_errors": [reason]}), headers
    if isinstance(exc, (DatabaseError, InterfaceError)):
        logger.error("database error", exc_info=exc)
        return 503, error_payload("service_unavailable",
                                  "The database is unavailable; retry."), headers
    logger.error("unhandled exception", exc_info=exc)
    return 500, error_payload("internal_error", "Internal server error."), headers


# --- which field a database refusal is about ----------------------------------------------------

_REASONS = {
    "22001": "The value is too long.",
    "22003": "The value is out of range.",
    "22008": "The date or time is out of range.",
    "22021": "The value contains a character the database cannot store (such as NUL).",
    "22P05": "The value contains a character the database cannot store (such as NUL).",
}


def _sqlstate(exc: BaseException) -> str:
    cause = exc.__cause__
    return str(getattr(cause, "sqlstate", "") or "")


def _data_error_reason(exc: BaseException) -> str:
    state = _sqlstate(exc)
    if state in _REASONS:
        return _REASONS[state]
    if "NUL" in str(exc.__cause__ or exc):  # psycopg refuses NUL in text before sending it
        return _REASONS["22021"]
    return "The database does not accept this value."


def _diag_column(exc: BaseException) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "column_name", None) or None


@functools.cache
def _fields_by_column() -> dict[tuple[str, str], models.Field[Any, Any]]:
    return {(model._meta.db_table, str(field.column)): field
            for model in apps.get_models() for field in model._meta.concrete_fields}


_INSERT = re.compile(r'\s*INSERT INTO "([^"]+)" \(([^)]*)\)', re.S)
_UPDATE = re.compile(r'\s*UPDATE "([^"]+)" SET (.*?)(?: WHERE |$)', re.S)
_ASSIGNMENT = re.compile(r'"([^"]+)" = ')


def _columns_and_values(sql: str, params: Any) -> Iterator[tuple[str, str, Any]]:
    """(table, column, value) for the parameters of an INSERT or UPDATE that Django wrote."""
    if not params:
        return
    params = list(params)
    if match := _INSERT.match(sql):
        table, columns = match.group(1), re.findall(r'"([^"]+)"', match.group(2))
        if not columns:
            return
        if "UNNEST(" in sql:  # bulk insert: one array per column
            yield from ((table, column, value) for column,
                        value in zip(columns, params, strict=False))
        else:
            yield from ((table, columns[i % len(columns)], value) for i, value in enumerate(params))
    elif match := _UPDATE.match(sql):
        table, assignments = match.group(1), match.group(2)
        index = 0
        pieces = _ASSIGNMENT.split(assignments)[1:]  # [column, expression, column, expression...]
        for column, expression in zip(pieces[::2], pieces[1::2], strict=False):
            for _ in range(expression.count("%s")):
                if index < len(params):
                    yield table, column, params[index]
                index += 1


def offending_field(sql: str, params: Any, many: bool) -> str | None:
    """The model field whose value made the statement fail, when the parameters show it."""
    fields = _fields_by_column()
    rows = params if many else [params]
    for row in rows or ():
        for table, column, value in _columns_and_values(sql, row):
            field = fields.get((table, column))
            if field is not None and column_refuses(field, value):
                return field.name
    return None


def annotate_data_error(exc: DataError, sql: str, params: Any, many: bool) -> None:
    """Remember on ``exc`` which field it is about (``exception_to_payload`` names it)."""
    try:
        field = offending_field(sql, params, many)
    except Exception:  # naming the field is a courtesy; the 422 does not depend on it
        field = None
    if field:
        exc.stateset_field = field  # type: ignore[attr-defined]


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
