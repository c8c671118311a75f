"""An audited object's history page in the back office shows its audit trail (SPEC §5): who
(API key, staff user, task, command), when, and each changed field's old and new value, above
Django's own log of admin changes. The site (``stateset.backoffice``) mixes this into the admin of
every audited model, whatever its base class."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import ModelAdmin
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse

from audit import registry, selectors

HISTORY_ROWS = 100


class AuditHistoryMixin:
    object_history_template = "admin/audit_history.html"

    def history_view(self, request: HttpRequest, object_id: str,
                     extra_context: dict[str, Any] | None = None) -> HttpResponse:
        entry = registry.for_model(self.model)  # type: ignore[attr-defined]  # a ModelAdmin's
        events: list[dict[str, Any]] = []
        if entry is not None:
            rows = selectors.events_of(entry, unquote(object_id)).order_by("-pgh_id")
            events = selectors.render_events(entry, rows[:HISTORY_ROWS])
        context = {"audit_events": events, "audit_limit": HISTORY_ROWS, **(extra_context or {})}
        response: HttpResponse = super().history_view(  # type: ignore[misc]  # mixed into ModelAdmin
            request, object_id, extra_context=context)
        return response


def with_audit_history(admin_class: type[ModelAdmin[Any]]) -> type[ModelAdmin[Any]]:
    if issubclass(admin_class, AuditHistoryMixin):
        return admin_class
    return type(admin_class.__name__, (AuditHistoryMixin, admin_class),
                {"__module__": admin_class.__module__,
                 "__doc__": admin_class.__doc__})
