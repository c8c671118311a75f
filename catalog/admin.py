"""Back office for the catalog (SPEC §5). Saves, deletes and actions go through catalog.services,
so versions, cache invalidation and the delete-or-deactivate rule hold here as in the API."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse

from catalog import selectors, services
from catalog.models import Product
from stateset.admin_site import BoundedCountPaginator
from stateset.csvio import csv_response


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    paginator = BoundedCountPaginator
    list_display = ("sku", "name", "price", "currency", "is_active", "version", "updated_at")
    list_display_links = ("sku", "name")
    list_filter = ("is_active",)
    # The search box uses the full-text index and the SKU prefix index (get_search_results), not
    # the ICONTAINS scans these names would otherwise produce.
    search_fields = ("sku", "name")
    search_help_text = (
        "Words of the name, SKU or description (the last word may be a prefix), or a SKU prefix.")
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-created_at", "-id")
    fields = ("id", "sku", "name", "description", "price", "currency", "is_active",
              "allow_backorder", "attributes",
              "version", "created_at", "updated_at")
    readonly_fields = ("id", "version", "created_at", "updated_at")
    actions = ["activate", "deactivate", "export_csv"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet,
                           search_term: str) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        return selectors.product_search_filter(queryset, search_term), False

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in services.WRITABLE_FIELDS
                  if name in form.cleaned_data}
        if change:
            changed = {name: value for name, value in fields.items() if name in form.changed_data}
            saved = (services.product_update(product_id=obj.pk, fields=changed) if changed
                     else Product.objects.get(pk=obj.pk))
        else:
            saved = services.product_create(**fields)
        _copy_into(obj, saved)

    def delete_model(self, request: HttpRequest, obj: Product) -> None:
        self.delete_queryset(request, Product.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        kept = [sku for pk, sku in queryset.values_list("pk", "sku")
                if not services.product_delete(product_id=pk).deleted]
        if kept:
            messages.warning(request,
                             f"Referenced by other records, deactivated instead of deleted: "
                                      f"{', '.join(kept)}.")

    @admin.action(description="Activate selected products", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = services.products_set_active(product_ids=queryset.values_list("pk", flat=True),
                                             is_active=True)
        self.message_user(request, f"Activated {count} product(s).")

    @admin.action(description="Deactivate selected products", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = services.products_set_active(product_ids=queryset.values_list("pk", flat=True),
                                             is_active=False)
        self.message_user(request, f"Deactivated {count} product(s).")

    @admin.action(description="Export selected products (CSV, re-importable)", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        return csv_response("products.csv", selectors.EXPORT_COLUMNS,
                            selectors.product_export_rows(queryset))


def _copy_into(obj: Product, saved: Product) -> None:
    """The admin keeps using ``obj`` (log entry, redirect): give it the saved row's state."""
    for field in Product._meta.concrete_fields:
        if not field.generated:
            setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
