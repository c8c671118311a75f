from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from stateset import services
from stateset.config import ConfigError, parse_rate
from stateset.keys import scope_is_valid
from stateset.models import ApiKey, IdempotencyRecord

admin.site.site_header = "StateSet back office"
admin.site.site_title = "StateSet"
admin.site.index_title = "Operations"


class ApiKeyForm(forms.ModelForm):
    """Refuses what ``services.api_key_create`` and the request path would refuse (same checks:
    ``scope_is_valid``, ``parse_rate``), so a key saved here never makes its requests fail."""

    class Meta:
        model = ApiKey
        fields = ("name", "scopes", "rate_limit", "expires_at")

    def clean_scopes(self) -> list[str]:
        scopes = [s.strip() for s in self.cleaned_data.get("scopes") or [] if s.strip()]
        bad = [s for s in scopes if not scope_is_valid(s)]
        if bad:
            raise forms.ValidationError(f"Unknown scope(s): {', '.join(bad)}.")
        if not scopes:
            raise forms.ValidationError("Give at least one scope.")
        return scopes

    def clean_rate_limit(self) -> str:
        rate = (self.cleaned_data.get("rate_limit") or "").strip()
        if rate:
            try:
                parse_rate(rate, key="rate_limit")
            except ConfigError as exc:
                raise forms.ValidationError(str(exc)) from None
        return rate


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix", "scopes", "expires_at", "revoked_at", "last_used_at", "created_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "last_used_at", "created_at", "revoked_at")
    fields = ("name", "scopes", "rate_limit", "expires_at", "prefix", "last_used_at", "revoked_at", "created_at")
    actions = ["revoke"]
    show_full_result_count = False

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        if change:
            super().save_model(request, obj, form, change)
            return
        created, raw = services.api_key_create(name=obj.name, scopes=list(obj.scopes),
                                               expires_at=obj.expires_at, rate_limit=obj.rate_limit)
        obj.pk, obj.prefix, obj.key_hash, obj._state.adding = created.pk, created.prefix, created.key_hash, False
        messages.warning(request, f"The new key is {raw} — copy it now, it is not shown again.")

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        for key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=key)
        self.message_user(request, "Revoked.")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "owner", "method", "path", "status", "response_status", "created_at", "expires_at")
    list_filter = ("status",)
    search_fields = ("key",)
    show_full_result_count = False
    # The stored answer is for replays, not for reading: it is never shown here (an answer that
    # carried a secret is stored redacted, and one stored before that was may still hold it).
    fields = ("key", "owner", "method", "path", "request_hash", "status", "response_status",
              "response_headers", "locked_until", "created_at", "expires_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
