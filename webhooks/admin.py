"""Back office for webhooks: endpoints, the delivery log with "resend", the outbox (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from stateset.admin_site import ReadOnlyAdmin, ServiceModelAdmin
from stateset.errors import DomainError
from webhooks import services
from webhooks.models import Delivery, Endpoint, Event


class EndpointForm(forms.ModelForm):
    """The services' own rules, shown as form errors."""

    class Meta:
        model = Endpoint
        fields = ("url", "events", "description", "is_active")

    def clean_url(self) -> str:
        return _cleaned(services.clean_url, self.cleaned_data["url"])

    def clean_events(self) -> list[str]:
        return _cleaned(services.clean_events, self.cleaned_data["events"])


def _cleaned(clean: Any, value: Any) -> Any:
    try:
        return clean(value)
    except DomainError as exc:
        raise forms.ValidationError(
            f"{exc.message} {exc.details.get('events', '') or ''}".strip()) from exc


@admin.register(Endpoint)
class EndpointAdmin(ServiceModelAdmin):
    form = EndpointForm
    list_display = ("url", "events", "is_active", "consecutive_failures", "disabled_at",
                    "description", "created_at")
    list_filter = ("is_active", ("disabled_at", admin.EmptyFieldListFilter))
    search_fields = ("url", "description")
    readonly_fields = ("id", "consecutive_failures", "disabled_at", "disabled_reason",
                       "previous_secret_expires_at", "version", "created_at", "updated_at")
    fields = ("url", "events", "description", "is_active", *readonly_fields)
    show_full_result_count = False

    def save_model(self, request: HttpRequest, obj: Endpoint, form: Any, change: bool) -> None:
        """Through the services, so the URL and event rules hold here too (the secret is generated
        and shown once; ticking is_active on a disabled endpoint re-enables it and sends what
        waited)."""
        values = {name: form.cleaned_data[name]
                  for name in ("url", "events", "description", "is_active")}
        if change:
            saved = services.endpoint_update(endpoint_id=obj.id, fields=values)
        else:
            saved = services.endpoint_create(**values)
            self.message_user(request, f"Signing secret (shown once): {saved.secret}",
                              messages.WARNING)
        obj.pk, obj.version = saved.pk, saved.version

    def delete_model(self, request: HttpRequest, obj: Endpoint) -> None:
        services.endpoint_delete(endpoint_id=obj.id)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event_type", "endpoint", "status", "attempts", "response_status",
                    "next_attempt_at", "last_error")
    list_filter = ("status",)
    list_select_related = ("event", "endpoint")
    actions = ["resend"]
    readonly_fields = ("id", "endpoint", "event", "status", "attempts", "next_attempt_at",
                       "last_attempt_at",
                       "response_status", "last_error", "created_at", "delivered_at")

    @admin.display(description="event")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.change_delivery")

    @admin.action(description="Resend the selected deliveries", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = services.deliveries_resend(delivery_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "type", "dispatched_at")
    list_filter = ("type",)
    readonly_fields = ("id", "type", "payload", "created_at", "dispatched_at")
