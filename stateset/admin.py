from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from stateset import services
from stateset.admin_site import BoundedCountPaginator, ServiceModelAdmin, admin_actor, run_each
from stateset.api.auth import granted_scopes
from stateset.errors import ValidationFailed
from stateset.keys import Grantor
from stateset.models import ApiKey, IdempotencyRecord

admin.site.site_header = "StateSet back office"
admin.site.site_title = "StateSet"
admin.site.index_title = "Operations"


class ApiKeyForm(forms.ModelForm[ApiKey]):
    """Refuses what ``services.api_key_create``/``api_key_update`` would refuse, as field errors."""

    class Meta:
        model = ApiKey
        fields = services.KEY_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        adding = self.instance._state.adding
        given = {name: cleaned[name] for name in services.KEY_FIELDS
                 if name in cleaned and (adding or name in self.changed_data)}
        try:
            services.api_key_validate(fields=given)
        except ValidationFailed as exc:
            for name, errors in exc.details.items():
                self.add_error(name if name in self.fields else None, errors)
        return cleaned


def _grantor(request: HttpRequest) -> Grantor | None:
    """A superuser is an operator (may grant anything, orders:set_prices too); other staff grant
    only the scopes their session would have over the API."""
    if getattr(request.user, "is_superuser", False):
        return None
    return Grantor(scopes=tuple(granted_scopes(request.user)))


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix", "scopes", "expires_at", "revoked_at", "last_used_at",
                    "hash_scheme", "created_by", "created_at")
    list_filter = ("revoked_at", "hash_scheme")
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "hash_scheme", "created_by", "last_used_at", "created_at",
                       "rotated_at", "previous_expires_at", "revoked_at")
    fields = ("name", "scopes", "rate_limit", "expires_at", "prefix", "hash_scheme", "created_by",
              "last_used_at", "rotated_at", "previous_expires_at", "revoked_at", "created_at")
    actions = ["revoke", "rotate_now", "rotate_with_grace"]
    show_full_result_count = False
    paginator = BoundedCountPaginator

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # revoke instead: the row stays for the record, and revoking reaches every worker
        return False

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            changed = {name: form.cleaned_data[name] for name in services.KEY_FIELDS
                       if name in form.changed_data}
            saved = (services.api_key_update(api_key_id=obj.pk, fields=changed,
                                             grantor=_grantor(request))
                     if changed else ApiKey.objects.get(pk=obj.pk))
        else:
            saved, raw = services.api_key_create(
                name=obj.name, scopes=list(obj.scopes), expires_at=obj.expires_at,
                rate_limit=obj.rate_limit,
                grantor=_grantor(request), created_by=admin_actor(request))
            messages.warning(request, f"The new key is {raw} — copy it now, it is not shown again.")
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    @admin.action(description="Revoke selected keys (they stop working at once)",
                  permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        run_each(self, request, queryset,
                 lambda pk: services.api_key_revoke(api_key_id=pk, grantor=_grantor(request)),
                 label="name", noun="keys", done_as="revoked")

    def _rotate(self, request: HttpRequest, queryset: QuerySet[ApiKey], grace_seconds: int) -> None:
        def rotate(pk: Any) -> None:
            api_key, raw = services.api_key_rotate(api_key_id=pk, grace_seconds=grace_seconds,
                                                   grantor=_grantor(request))
            # The secret is shown here once and stored nowhere (the message lives until displayed).
            self.message_user(request,
                              f"{api_key.name}: the new key is {raw} — copy it now, it is not "
                                       "shown again.", messages.WARNING)

        run_each(self, request, queryset, rotate, label="name", noun="keys", done_as="rotated")

    @admin.action(description="Rotate selected keys (the old secret stops at once)",
                  permissions=["change"])
    def rotate_now(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        self._rotate(request, queryset, 0)

    @admin.action(description="Rotate selected keys (the old secret works 24 hours more)",
                  permissions=["change"])
    def rotate_with_grace(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        self._rotate(request, queryset, 86400)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin[IdempotencyRecord]):
    list_display = ("key", "owner", "method", "path", "status", "response_status", "created_at",
                    "expires_at")
    list_filter = ("status",)
    search_fields = ("key",)
    show_full_result_count = False
    # The stored answer is for replays, not for reading: it is never shown here (an answer that
    # carried a secret is stored redacted, and one stored before that was may still hold it).
    fields = ("key", "owner", "method", "path", "request_hash", "status", "response_status",
              "response_headers", "locked_until", "created_at", "expires_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
