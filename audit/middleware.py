"""Opens the request's audit scope: its writes are the API key's or the staff user's."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit import context


class AuditScopeMiddleware:
    """Costs nothing until the request writes an audited table (``audit.context``); reads and
    safe requests never pay for it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        values = {"request_id": getattr(request, "request_id", None), "method": request.method,
                  "path": request.path[:200]}
        with context.scope(request, **values):
            return self.get_response(request)
