"""Back office for imports (SPEC §4.8, §5): upload a file, see the dry run's result (counts and
the errors by row and column), then apply it — the same service as ``POST /imports``, so the
preview is exactly what applying will do to the rows as they are now.

Why not django-import-export: see docs/decisions.md ("Imports in the back office").
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from imports import services
from imports.models import Import
from stateset.admin_site import BoundedCountPaginator, admin_actor
from stateset.errors import DomainError

# The model permissions a user needs, besides imports.add_import, to import each kind.
KIND_PERMISSIONS = {
    "products": ("catalog.add_product", "catalog.change_product"),
    "customers": ("customers.add_customer", "customers.change_customer"),
    "inventory": ("inventory.add_inventoryitem", "inventory.change_inventoryitem"),
}


class UploadForm(forms.Form):
    kind = forms.ChoiceField(choices=Import.Kind.choices)
    mode = forms.ChoiceField(choices=Import.Mode.choices, initial=Import.Mode.UPSERT,
                             help_text="create: a row whose key exists already is a failed row.")
    file = forms.FileField(
        help_text="UTF-8 CSV with a header row (.csv), or one JSON object per line (.ndjson).")

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        suffix = PurePath(upload.name or "").suffix.lower()
        if suffix not in (".csv", ".ndjson", ".jsonl", ".txt"):
            raise forms.ValidationError("Upload a .csv or .ndjson file.")
        return upload


def may_import(request: HttpRequest, kind: str) -> bool:
    return (request.user.has_perm("imports.add_import")
            and request.user.has_perms(KIND_PERMISSIONS[kind]))


@admin.register(Import)
class ImportAdmin(admin.ModelAdmin):
    paginator = BoundedCountPaginator
    show_full_result_count = False
    list_display = ("created_at", "kind", "mode", "dry_run", "status", "progress", "created",
                    "updated", "unchanged", "failed", "created_by")
    list_filter = ("kind", "status", "dry_run")
    ordering = ("-created_at", "-id")
    list_per_page = 50
    fields = ("id", "kind", "mode", "dry_run", "format", "status", "file_name", "file_bytes",
              "rows_total",
              "rows_done", "created", "updated", "unchanged", "failed", "error_count", "created_by",
              "source", "created_at", "started_at", "finished_at")
    readonly_fields = fields
    change_form_template = "admin/imports/import/change_form.html"

    @admin.display(description="rows")
    def progress(self, record: Import) -> str:
        return f"{record.rows_done} / {record.rows_total if record.rows_total is not None else '?'}"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        return [path("<uuid:import_id>/apply/", self.admin_site.admin_view(self.apply_view),
                     name="imports_import_apply"), *super().get_urls()]

    def add_view(self, request: HttpRequest, form_url: str = "",
                 extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Upload: a dry run of the file, then its page shows the preview and the Apply button."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            kind = form.cleaned_data["kind"]
            upload = form.cleaned_data["file"]
            if not may_import(request, kind):
                form.add_error("kind", "You may not change these records.")
            else:
                name = upload.name or ""
                file_format = ("csv" if PurePath(name).suffix.lower() in (".csv", ".txt")
                               else "ndjson")
                try:
                    with upload.open("rb") as stream:
                        record = services.import_create(kind=kind, stream=stream,
                                                        file_format=file_format,
                                                        mode=form.cleaned_data["mode"],
                                                        dry_run=True,
                                                        actor=admin_actor(request), file_name=name)
                except DomainError as exc:
                    form.add_error("file", exc.message)
                else:
                    self.message_user(request,
                                      "Dry run started: nothing is written until you apply it.")
                    return HttpResponseRedirect(reverse("admin:imports_import_change",
                                                        args=[record.pk]))
        context = {**self.admin_site.each_context(request), "title": "Import a file", "form": form,
                   "opts": self.model._meta, "has_view_permission": True}
        return TemplateResponse(request, "admin/imports/import/upload.html", context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        record = Import.objects.filter(pk=object_id).first() if object_id else None
        context = dict(extra_context or {})
        if record is not None:
            context.update(
                record=record,
                # Not "errors": the admin's change form shows "Please correct the error below."
                # whenever its context has errors.
                import_errors=record.errors,
                running=record.status in (Import.Status.QUEUED, Import.Status.RUNNING),
                can_apply=(record.dry_run and record.status == Import.Status.SUCCEEDED
                           and record.file_purged_at is None and not record.applied_as.exists()
                           and may_import(request, record.kind)),
                applied=record.applied_as.order_by("-created_at").first(),
            )
        return super().change_view(request, object_id, form_url, context)

    def apply_view(self, request: HttpRequest, import_id: Any) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        record = Import.objects.filter(pk=import_id).first()
        if record is None or not may_import(request, record.kind):
            raise PermissionDenied
        try:
            applied = services.import_apply(import_id=record.pk, actor=admin_actor(request))
        except DomainError as exc:
            self.message_user(request, f"Not applied: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:imports_import_change", args=[record.pk]))
        self.message_user(request, "Import started.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:imports_import_change", args=[applied.pk]))
