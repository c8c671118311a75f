"""The back office's admin site: the index shows what staff check first (SPEC §5)."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.template.response import TemplateResponse


class StateSetAdminSite(AdminSite):
    site_header = "StateSet back office"
    site_title = "StateSet"
    index_title = "Operations"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        from inventory.selectors import low_stock_items
        from orders.selectors import orders_today

        context = {"today": orders_today(), "low_stock": low_stock_items(limit=10), **(extra_context or {})}
        return super().index(request, extra_context=context)
