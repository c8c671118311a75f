"""The back office's building blocks for every app's admin (SPEC §5): bounded counts, read-only
logs and inlines, change forms and actions that go through services. The site itself, with its
dashboard, is the wiring's ``stateset.backoffice``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from django import forms
from django.contrib import messages
from django.contrib.admin import ModelAdmin, TabularInline
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
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


# --------------------------------------------------------------------------------------------------
# Moves: the buttons of an object's page (SPEC §5 "Work on an object page")


@dataclass(frozen=True)
class Move:
    """A move staff make from an object's page: a button shown when the move is ``legal`` now for
    the page's subject and the user holds ``permission`` ("app.codename"); it posts to
    ``<object id>/move/<name>/``, which checks the permission again and calls ``apply`` — one
    service call, the same as the API's — whose answer is the success message. A refusal
    (DomainError) is an error message with nothing written.

    A move that needs input has a ``form`` (built as ``form(data, **form_kwargs(request,
    subject))``): a few fields sit inside the button's own form; with ``page`` the button is a link
    to a page of its own (``template``) that works without JavaScript."""

    name: str
    label: str
    permission: str
    legal: Callable[[Any], bool]
    apply: Callable[[HttpRequest, Any, dict[str, Any]], str]
    form: type[forms.Form] | None = None
    form_kwargs: Callable[[HttpRequest, Any], dict[str, Any]] | None = None
    page: bool = False
    template: str = "admin/stateset/move_form.html"
    rank: int = 100  # buttons are shown by rank, then label


def error_text(exc: DomainError, *, limit: int = 5) -> str:
    """A refusal for a person: the error's message, then the first few field messages of its
    details ("At most 2 unit(s) of SKU-1 are left to ship.")."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if len(found) >= limit:
            return
        if isinstance(value, dict):
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                if isinstance(inner, str):
                    if inner not in found and len(found) < limit:
                        found.append(inner)
                else:
                    walk(inner)

    walk(exc.details)
    return " ".join([exc.message, *found])


class MovesAdmin(ServiceModelAdmin):
    """An admin whose change page offers :class:`Move` buttons. Apps add moves with
    :meth:`add_move` (an app above this one included, so the lower app never imports it);
    ``move_subject`` is what the moves see (the page's read, from the app's selectors)."""

    moves: ClassVar[dict[str, Move]] = {}
    change_form_template = "admin/stateset/change_form_moves.html"

    @classmethod
    def add_move(cls, move: Move) -> None:
        cls.moves = {**cls.moves, move.name: move}  # a copy: a subclass never shares its parent's

    def move_subject(self, request: HttpRequest, object_id: str) -> Any | None:
        """What the moves decide on and act on; None when there is no such object."""
        return self.get_object(request, object_id)

    def subject_state(self, subject: Any) -> str:
        """The subject's state, as a refusal names it."""
        state = subject.get("status") if isinstance(subject, dict) else getattr(subject,
                                                                                 "status", "")
        return f"it is {state}" if state else "its state does not allow it"

    def subject_label(self, subject: Any) -> str:
        """How a move's page names its object (in the breadcrumbs)."""
        return str(subject)

    def available_moves(self, request: HttpRequest, subject: Any) -> list[dict[str, Any]]:
        """The moves legal now that the user may make, each with its (unbound) inline form."""
        out = []
        for move in sorted(self.moves.values(), key=lambda m: (m.rank, m.label)):
            if not request.user.has_perm(move.permission) or not move.legal(subject):
                continue
            form = None
            if move.form is not None and not move.page:
                form = move.form(None, prefix=move.name,
                                 **self._form_kwargs(move, request, subject))
            out.append({"move": move, "form": form,
                        "url": self._move_url(self._subject_pk(subject), move.name)})
        return out

    def _subject_pk(self, subject: Any) -> Any:
        return subject["id"] if isinstance(subject, dict) else subject.pk

    def _move_url(self, object_id: Any, name: str) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_move",
                       args=[object_id, name], current_app=self.admin_site.name)

    def _change_url(self, object_id: Any) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id],
                       current_app=self.admin_site.name)

    @staticmethod
    def _form_kwargs(move: Move, request: HttpRequest, subject: Any) -> dict[str, Any]:
        return move.form_kwargs(request, subject) if move.form_kwargs else {}

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta
        return [path("<path:object_id>/move/<slug:name>/",
                     self.admin_site.admin_view(self.move_view),
                     name=f"{opts.app_label}_{opts.model_name}_move"), *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        subject = self.move_subject(request, object_id)
        context = {"subject": subject, **(extra_context or {})}
        if subject is not None:
            context["moves"] = self.available_moves(request, subject)
        return super().change_view(request, object_id, form_url, context)

    def move_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        """GET: a move's own form page; POST: make the move. The move's permission and the right to
        see the object are checked first (403)."""
        move = self.moves.get(name)
        if move is None:
            raise Http404("No such move.")
        if not (request.user.has_perm(move.permission)
                and self.has_view_or_change_permission(request)):
            raise PermissionDenied
        if request.method != "POST" and not (move.page and request.method == "GET"):
            return HttpResponseNotAllowed(["POST"])
        subject = self.move_subject(request, object_id)
        if subject is None:
            raise Http404("No such object.")
        back = HttpResponseRedirect(self._change_url(self._subject_pk(subject)))
        if not move.legal(subject):  # the page was stale; the service would refuse most of these
            self.message_user(request, f"{move.label}: not possible now "
                                       f"({self.subject_state(subject)}).", messages.ERROR)
            return back
        form = None
        if move.form is not None:
            data = request.POST if request.method == "POST" else None
            form = move.form(data, prefix=None if move.page else move.name,
                             **self._form_kwargs(move, request, subject))
            if not form.is_bound or not form.is_valid():
                if move.page:
                    return self._move_page(request, move, subject, form)
                self.message_user(request, f"{move.label}: {_form_errors(form)}", messages.ERROR)
                return back
        try:
            done = move.apply(request, subject, form.cleaned_data if form is not None else {})
        except DomainError as exc:
            self.message_user(request, f"{move.label}: {error_text(exc)}", messages.ERROR)
            if move.page and form is not None:
                return self._move_page(request, move, subject, form)
            return back
        self.message_user(request, done, messages.SUCCESS)
        return back

    def _move_page(self, request: HttpRequest, move: Move, subject: Any,
                   form: forms.Form | None) -> HttpResponse:
        opts = self.model._meta
        pk = self._subject_pk(subject)
        context = {**self.admin_site.each_context(request), "opts": opts, "move": move,
                   "form": form, "subject": subject, "title": move.label,
                   "subtitle": self.subject_label(subject),
                   "media": self.media + (form.media if form is not None else forms.Media()),
                   "original": self.subject_label(subject),
                   "change_url": self._change_url(pk), "has_view_permission": True}
        return TemplateResponse(request, move.template, context)


def _form_errors(form: forms.Form) -> str:
    return " ".join(f"{'' if field == '__all__' else field + ': '}"
                    f"{' '.join(str(error) for error in errors)}"
                    for field, errors in form.errors.items())
