"""The back office's building blocks for every app's admin (SPEC §5): bounded counts, read-only
logs and inlines, change forms and actions that go through services. The site itself, with its
dashboard, is the wiring's ``stateset.backoffice``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.contrib import messages
from django.contrib.admin import ModelAdmin, TabularInline
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.functional import cached_property

from stateset.errors import DomainError
from stateset.pagination import bounded_total


class BoundedCountPaginator(Paginator[Any]):
    """Changelist counts are exact up to ``[api] exact_count_limit`` and a planner estimate above,
    never a full ``COUNT(*)`` over a million rows (``show_full_result_count = False`` avoids only
    the second, unfiltered count)."""

    @cached_property
    def count(self) -> int:
        # Changelists paginate querysets only.
        return bounded_total(cast("QuerySet[Any]", self.object_list))[0]


MAX_ACTION_ROWS = 100


class ReadOnlyAdmin(ModelAdmin[Any]):
    """A log, ledger or line table in the back office: listed and filtered, never edited here (its
    rows are written by services). Bounded counts, as every changelist here."""

    show_full_result_count = False
    paginator = BoundedCountPaginator

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(TabularInline[Any, Any]):
    """Rows shown on their parent's page (an order's items, shipments, returns, timeline),
    read-only: they change through their own services and pages. Every field listed in ``fields`` is
    read-only."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def run_each(model_admin: ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any],
             call: Callable[[Any], Any], *, label: str, noun: str, done_as: str) -> None:
    """An admin action's loop: ``call(pk)`` (one service call, its own transaction) for each
    selected row, then "N <noun> <done_as>." and one error message per refusal, named by the row's
    ``label`` field. More than MAX_ACTION_ROWS rows at once is refused."""
    rows = list(queryset.select_related(None).order_by("pk").values_list("pk",
                                                                         label)[
                                                                             : MAX_ACTION_ROWS + 1])
    if len(rows) > MAX_ACTION_ROWS:
        model_admin.message_user(request, f"Select at most {MAX_ACTION_ROWS} {noun}.",
                                 messages.ERROR)
        return
    done, failed = 0, []
    for pk, name in rows:
        try:
            call(pk)
            done += 1
        except DomainError as exc:
            failed.append(f"{name}: {exc.message}")
    if done:
        model_admin.message_user(request, f"{done} {noun} {done_as}.", messages.SUCCESS)
    for failure in failed:
        model_admin.message_user(request, failure, messages.ERROR)


def admin_actor(request: HttpRequest) -> str:
    """Who did it, on ledger and timeline rows written from the back office."""
    return f"admin:{request.user.get_username()}"


class ServiceModelAdmin(ModelAdmin[Any]):
    """For models whose changes go through a service (``save_model`` calls it). The service owns the
    transaction, so the change form is not wrapped in Django's ``atomic()`` (a durable service block
    may not nest in it), and a refusal (DomainError) is shown as an error on the same page with
    nothing saved, instead of a traceback or a "changed successfully" next to it."""

    def changeform_view(self, request: HttpRequest, object_id: str | None = None,
                        form_url: str = "",
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        try:
            # Django's own body of changeform_view, without its atomic(): private, so not in
            # django-stubs.
            response: HttpResponse = self._changeform_view(  # type: ignore[attr-defined]  # private Django API
                request, object_id, form_url, extra_context)
            return response
        except DomainError as exc:
            self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
