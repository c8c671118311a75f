"""Back office for customers (SPEC §5). Saves go through customers.services, so versions, cache
invalidation and the one-default-address-per-kind rule hold here as in the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse

from customers import selectors, services
from customers.countries import ISO_3166_ALPHA2
from customers.models import Address, Customer
from stateset.admin_site import BoundedCountPaginator
from stateset.csvio import csv_response


class AddressForm(forms.ModelForm):
    class Meta:
        model = Address
        fields = services.ADDRESS_FIELDS

    def clean_country(self) -> str:
        country = (self.cleaned_data.get("country") or "").strip().upper()
        if country not in ISO_3166_ALPHA2:
            raise ValidationError("Use an ISO 3166-1 alpha-2 country code such as US.")
        return country

    def validate_constraints(self) -> None:
        # Marking an address default un-defaults the previous one (address_update/create do it), so
        # the one-default-per-kind constraint must not reject the form beforehand.
        # Both helpers are private to Django's ModelForm (not in django-stubs).
        exclusions = self._get_validation_exclusions()  # type: ignore[attr-defined]  # private
        exclude = exclusions | {"is_default"}
        try:
            self.instance.validate_constraints(exclude=exclude)
        except ValidationError as exc:
            self._update_errors(exc)  # type: ignore[attr-defined]  # private, see above


def _address_fields(form: forms.ModelForm, *, changed_only: bool) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in services.ADDRESS_FIELDS
            if name in form.cleaned_data and (not changed_only or name in form.changed_data)}


def save_address(form: forms.ModelForm, *, customer_id: Any, change: bool) -> Address:
    if change:
        return services.address_update(address_id=form.instance.pk,
                                       fields=_address_fields(form, changed_only=True))
    return services.address_create(customer_id=customer_id,
                                   **_address_fields(form, changed_only=False))


class AddressInline(admin.TabularInline):
    model = Address
    form = AddressForm
    extra = 0
    fields = services.ADDRESS_FIELDS


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    paginator = BoundedCountPaginator
    list_display = ("email", "first_name", "last_name", "phone", "created_at")
    # Prefix search on the indexed lower(email/first_name/last_name) (get_search_results).
    search_fields = ("email", "first_name", "last_name")
    search_help_text = "Start of the email, first name, last name, or \"first last\"."
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-created_at", "-id")
    fields = ("id", "email", "first_name", "last_name", "phone", "metadata", "version",
              "created_at", "updated_at")
    readonly_fields = ("id", "version", "created_at", "updated_at")
    inlines = [AddressInline]
    actions = ["export_csv"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet,
                           search_term: str) -> tuple[QuerySet, bool]:
        return selectors.customer_search_filter(queryset, search_term), False

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in services.CUSTOMER_FIELDS
                  if name in form.cleaned_data}
        if change:
            changed = {name: value for name, value in fields.items() if name in form.changed_data}
            saved = (services.customer_update(customer_id=obj.pk, fields=changed) if changed
                     else Customer.objects.get(pk=obj.pk))
        else:
            saved = services.customer_create(**fields)
        for field in Customer._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    @admin.action(description="Export selected customers (CSV, re-importable)",
                  permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        return csv_response("customers.csv", selectors.EXPORT_COLUMNS,
                            selectors.customer_export_rows(queryset))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Address:
            super().save_formset(request, form, formset, change)
            return
        customer = form.instance
        deleted = formset.deleted_forms if formset.can_delete else []
        # What construct_change_message() reports afterwards.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.initial_forms:
            if inline_form in deleted:
                services.address_delete(address_id=inline_form.instance.pk)
                formset.deleted_objects.append(inline_form.instance)
            elif inline_form.has_changed():
                saved = save_address(inline_form, customer_id=customer.pk, change=True)
                formset.changed_objects.append((saved, inline_form.changed_data))
        for inline_form in formset.extra_forms:
            if inline_form.has_changed() and inline_form not in deleted:
                saved = save_address(inline_form, customer_id=customer.pk, change=False)
                inline_form.instance = saved
                formset.new_objects.append(saved)


@admin.register(Address)
class AddressAdmin(admin.ModelAdmin):
    paginator = BoundedCountPaginator
    form = AddressForm
    list_display = ("customer", "kind", "line1", "city", "country", "is_default", "created_at")
    list_select_related = ("customer",)
    list_filter = ("kind", "is_default")
    search_fields = ("customer__email",)
    search_help_text = "Start of the customer's email."
    show_full_result_count = False
    list_per_page = 50
    raw_id_fields = ("customer",)
    fields = ("customer", *services.ADDRESS_FIELDS)

    def get_readonly_fields(self, request: HttpRequest, obj: Address | None = None) -> Any:
        return ("customer",) if obj is not None else ()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet,
                           search_term: str) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        customers = selectors.customer_search_filter(Customer.objects.all(), search_term.strip())
        return queryset.filter(customer__in=customers.values("pk")), False

    def save_model(self, request: HttpRequest, obj: Address, form: Any, change: bool) -> None:
        customer_id = obj.customer_id
        saved = save_address(form, customer_id=customer_id, change=change)
        for field in Address._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Address) -> None:
        services.address_delete(address_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for address_id in queryset.values_list("pk", flat=True):
            services.address_delete(address_id=address_id)
