"""Back office for webhooks: endpoints, the delivery log with "resend", the outbox (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from stateset.admin_site import MAX_ACTION_ROWS, ReadOnlyAdmin, ServiceModelAdmin
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

    change_form_template = "admin/webhooks/delivery/change_form.html"

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.change_delivery")

    @admin.action(description="Resend the selected deliveries", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        ids = list(queryset.order_by().values_list("id", flat=True)[: MAX_ACTION_ROWS + 1])
        if len(ids) > MAX_ACTION_ROWS:
            self.message_user(request, f"Select at most {MAX_ACTION_ROWS} deliveries.",
                              messages.ERROR)
            return
        count = services.deliveries_resend(delivery_ids=ids)
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)

    # --- a delivery's page: "Resend" (SPEC §5) ------------------------------------------------

    def get_urls(self) -> list[Any]:
        return [path("<uuid:delivery_id>/resend/", self.admin_site.admin_view(self.resend_view),
                     name="webhooks_delivery_resend"), *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {**(extra_context or {}), "can_resend": self.has_resend_permission(request)}
        return super().change_view(request, object_id, form_url, context)

    def resend_view(self, request: HttpRequest, delivery_id: Any) -> HttpResponse:
        """One delivery sent again from a fresh count of attempts: the same service as the bulk
        action and ``POST /webhooks/{id}/deliveries/{delivery_id}/resend``. POST only,
        ``webhooks.change_delivery``."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_resend_permission(request):
            raise PermissionDenied
        delivery = (Delivery.objects.select_related("event", "endpoint")
                    .filter(pk=delivery_id).first())
        if delivery is None or not services.deliveries_resend(delivery_ids=[delivery.pk]):
            self.message_user(request, "No such delivery.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:webhooks_delivery_changelist"))
        self.message_user(request, f"{delivery.event.type} to {delivery.endpoint.url}: queued "
                                   "again (attempts start over).", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:webhooks_delivery_change", args=[delivery.pk]))


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "type", "dispatched_at")
    list_filter = ("type",)
    readonly_fields = ("id", "type", "payload", "created_at", "dispatched_at")
