from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from stateset import services
from stateset.models import ApiKey, IdempotencyRecord

admin.site.site_header = "StateSet back office"
admin.site.site_title = "StateSet"
admin.site.index_title = "Operations"


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ("name", "prefix", "scopes", "expires_at", "revoked_at", "last_used_at",
                    "created_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "last_used_at", "created_at", "revoked_at")
    fields = ("name", "scopes", "rate_limit", "expires_at", "prefix", "last_used_at", "revoked_at",
              "created_at")
    actions = ["revoke"]
    show_full_result_count = False

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created, raw = services.api_key_create(name=obj.name, scopes=list(obj.scopes),
                                               expires_at=obj.expires_at, rate_limit=obj.rate_limit)
        obj.pk, obj.prefix, obj.key_hash, obj._state.adding = (created.pk, created.prefix,
                                                               created.key_hash, False)
        messages.warning(request, f"The new key is {raw} — copy it now, it is not shown again.")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=key)
        self.message_user(request, "Revoked.")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin[IdempotencyRecord]):
    list_display = ("key", "owner", "method", "path", "status", "response_status", "created_at",
                    "expires_at")
    list_filter = ("status",)
    search_fields = ("key",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
