"""The back office's admin site (SPEC §5) — top wiring: its dashboard reads every app's selectors.

The platform's admin helpers (``stateset.admin_site``) import no domain app; this module may.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.template.response import TemplateResponse

from inventory.selectors import low_stock_items
from orders.selectors import orders_today
from webhooks.selectors import disabled_endpoints_count, failed_deliveries_count


class StateSetAdminSite(AdminSite):
    site_header = "StateSet back office"
    site_title = "StateSet"
    index_title = "Operations"

    def index(self, request: HttpRequest,
              extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {"today": orders_today(), "low_stock": low_stock_items(limit=10),
                   "failed_webhooks": failed_deliveries_count(),
                   "disabled_endpoints": disabled_endpoints_count(), **(extra_context or {})}
        return super().index(request, extra_context=context)
