"""The back office's admin site (SPEC §5) — top wiring: its dashboard reads every app's selectors.

The platform's admin helpers (``stateset.admin_site``) import no domain app; this module may.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite, ModelAdmin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from audit.admin import with_audit_history
from audit.registry import for_model
from stateset import dashboard


class StateSetAdminSite(AdminSite):
    site_header = "StateSet back office"
    site_title = "StateSet"
    index_title = "Operations"

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        """Each audited model's history page shows its audit trail (``audit.admin``), whichever
        base class its admin has."""
        models = ([model_or_iterable] if isinstance(model_or_iterable, type)
                  else list(model_or_iterable))
        for model in models:
            chosen = admin_class or ModelAdmin
            if for_model(model) is not None:
                chosen = with_audit_history(chosen)
            super().register(model, chosen, **options)

    def index(self, request: HttpRequest,
              extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {**dashboard.figures(), **(extra_context or {})}
        return super().index(request, extra_context=context)
