"""``/api/v1/webhooks`` (SPEC §4.7): subscribe endpoints to domain events; scope
``webhooks:manage``."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from stateset.api.pagination import parse_list_params
from stateset.api.serializers import (
    IF_MATCH,
    PUT_AS_PATCH,
    StrictBooleanField,
    StrictSerializer,
    TextField,
    page_of,
    validated,
)
from stateset.api.views import ApiViewSet, expected_version, parse_id
from stateset.errors import NotFound
from webhooks import selectors, services
from webhooks.models import EVENT_TYPES, Delivery

EVENT_CHOICES = [*EVENT_TYPES, "*"]


class EndpointIn(StrictSerializer):
    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES),
                                   allow_empty=False, max_length=len(EVENT_CHOICES))
    secret = TextField(min_length=16, max_length=128, required=False,
                       help_text="Generated when absent; shown only in the answer to this request.")
    description = TextField(max_length=255, required=False, allow_blank=True, default="")
    is_active = StrictBooleanField(required=False, default=True)


class EndpointUpdateIn(StrictSerializer):
    url = serializers.URLField(max_length=2000, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES),
                                   allow_empty=False, max_length=len(EVENT_CHOICES), required=False)
    description = TextField(max_length=255, required=False, allow_blank=True)
    is_active = StrictBooleanField(required=False)


class EndpointOut(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    is_active = serializers.BooleanField(
        help_text="False when deactivated, or disabled for failing (disabled_at set); setting it "
                  "true again re-enables the endpoint and sends its pending deliveries at once.")
    consecutive_failures = serializers.IntegerField(
        help_text="Failed delivery attempts in a row; a 2xx answer resets it. At [webhooks] "
                  "disable_after (default 100) the endpoint is disabled.")
    disabled_at = serializers.DateTimeField(
        allow_null=True, help_text="When it was disabled for failing (null otherwise).")
    disabled_reason = serializers.CharField(help_text="Why it was disabled (empty otherwise).")
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True,
        help_text="After a rotation: until when the old secret still signs (a second v1=).")
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EndpointCreatedOut(EndpointOut):
    secret = serializers.CharField(
        allow_null=True, help_text="Shown only here: store it to verify StateSet-Signature; null "
                                   "in an idempotent replay.")


class DeliveryOut(serializers.Serializer):
    id = serializers.UUIDField()
    event_id = serializers.UUIDField()
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    response_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)


class DeliveryFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)


def endpoint_id(value: str) -> uuid.UUID:
    return parse_id(value, code="webhook_not_found", message="No webhook endpoint with this id.")



class WebhookViewSet(ApiViewSet):
    scope = "webhooks"
    lookup_value_regex = "[^/]+"
    action_scopes = {name: "webhooks:manage" for name in
                     ("list", "create", "retrieve", "partial_update", "update", "destroy",
                      "deliveries", "resend", "rotate_secret")}
    # shown once: a replay answers it as null
    secret_fields = {"create": ("secret",), "rotate_secret": ("secret",)}

    @extend_schema(responses=page_of(EndpointOut, "WebhookEndpointPage"))
    def list(self, request: Request) -> Response:
        params = parse_list_params(request.query_params)
        return self.list_response(selectors.endpoint_list(), params,
                                  render=selectors.render_endpoints)

    @extend_schema(request=EndpointIn, responses={201: EndpointCreatedOut})
    def create(self, request: Request) -> Response:
        endpoint = services.endpoint_create(**validated(EndpointIn, request.data))
        data = {**selectors.render_endpoint(endpoint), "secret": endpoint.secret}
        return self.detail_response(data, version=endpoint.version, status=201)

    @extend_schema(responses=EndpointOut)
    def retrieve(self, request: Request, pk: str) -> Response:
        endpoint = selectors.endpoint_get(endpoint_id(pk))
        if endpoint is None:
            raise NotFound("No webhook endpoint with this id.", code="webhook_not_found")
        return self.detail_response(selectors.render_endpoint(endpoint), version=endpoint.version)

    @extend_schema(request=EndpointUpdateIn, responses=EndpointOut, parameters=[IF_MATCH])
    def partial_update(self, request: Request, pk: str) -> Response:
        target = endpoint_id(pk)
        version = expected_version(request)
        endpoint = services.endpoint_update(endpoint_id=target,
                                            fields=validated(EndpointUpdateIn, request.data),
                                            expected_version=version)
        return self.detail_response(selectors.render_endpoint(endpoint), version=endpoint.version)

    @extend_schema(request=EndpointUpdateIn, responses=EndpointOut, parameters=[IF_MATCH],
                   description=PUT_AS_PATCH)
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.endpoint_delete(endpoint_id=endpoint_id(pk))
        return Response(status=204)

    @extend_schema(parameters=[DeliveryFilters],
                   responses=page_of(DeliveryOut, "WebhookDeliveryPage"))
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str) -> Response:
        target = endpoint_id(pk)
        params = parse_list_params(request.query_params, filters=DeliveryFilters)
        if selectors.endpoint_get(target) is None:
            raise NotFound("No webhook endpoint with this id.", code="webhook_not_found")
        return self.list_response(selectors.delivery_list(endpoint_id=target, **params.filters),
                                  params, render=selectors.render_deliveries)

    @extend_schema(request=None, responses=DeliveryOut)
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[^/]+)/resend")
    def resend(self, request: Request, pk: str, delivery_id: str) -> Response:
        target = endpoint_id(pk)
        delivery = parse_id(delivery_id, code="delivery_not_found", message="No such delivery.")
        if not services.deliveries_resend(delivery_ids=[delivery], endpoint_id=target):
            raise NotFound("No such delivery for this endpoint.", code="delivery_not_found")
        row = selectors.delivery_list(endpoint_id=target).get(id=delivery)
        return Response(selectors.render_deliveries([row])[0])

    @extend_schema(request=None, responses=EndpointCreatedOut, parameters=[IF_MATCH],
                   description="A new signing secret, shown only in this answer (a replay of the "
                               "request answers it as null). For [webhooks] rotation_overlap "
                               "seconds (default 86400) each delivery is signed with both: "
                               "StateSet-Signature: t=...,v1=<new>,v1=<old>.")
    @action(detail=True, methods=["post"], url_path="rotate-secret", url_name="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        endpoint = services.endpoint_rotate_secret(endpoint_id=endpoint_id(pk),
                                                   expected_version=expected_version(request))
        data = {**selectors.render_endpoint(endpoint), "secret": endpoint.secret}
        return self.detail_response(data, version=endpoint.version)
