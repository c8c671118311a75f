"""The back office's admin site: the index shows what staff check first (SPEC §5)."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.functional import cached_property

from stateset.api.pagination import bounded_total


class BoundedCountPaginator(Paginator):
    """Changelist counts are exact up to ``[api] exact_count_limit`` and a planner estimate above,
    never a full ``COUNT(*)`` over a million rows (``show_full_result_count = False`` avoids only
    the second, unfiltered count)."""

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return bounded_total(self.object_list)[0]


class StateSetAdminSite(AdminSite):
    site_header = "StateSet back office"
    site_title = "StateSet"
    index_title = "Operations"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        from inventory.selectors import low_stock_items
        from orders.selectors import orders_today

        context = {"today": orders_today(), "low_stock": low_stock_items(limit=10), **(extra_context or {})}
        return super().index(request, extra_context=context)
