"""Shipments over REST (SPEC §4.5). Thin: validate, call one service or selector, render."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from fulfillment import selectors, services
from fulfillment.models import Shipment
from orders import selectors as orders_selectors
from orders import services as orders_services
from orders.api import ORDER_OUT, CancelIn, OrderRefField, StatusIn, may_set_prices, order_id
from stateset.api.pagination import parse_list_params
from stateset.api.serializers import (
    IF_MATCH,
    PUT_AS_PATCH,
    MoneyField,
    StrictIntegerField,
    StrictSerializer,
    TextField,
    page_of,
    validated,
)
from stateset.api.views import ApiViewSet, actor_of, expected_version, parse_id


class ShipmentItemIn(StrictSerializer):
    order_item_id = serializers.UUIDField()
    quantity = StrictIntegerField(min_value=1, max_value=services.MAX_QUANTITY)


class ShipmentCreateIn(StrictSerializer):
    order_id = OrderRefField()
    items: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=ShipmentItemIn(), required=False, allow_empty=False, max_length=services.MAX_LINES,
        help_text="Default: every unit not yet shipped nor in another pending shipment.")
    location_id = serializers.UUIDField(required=False, help_text=(
        "Default: the location whose reservations of the order cover every unit; when they "
        "are reserved at several, the one holding the most of them (with default items: the "
        "shipment takes what it holds) or 422 location_required (with explicit items)."))
    carrier = TextField(max_length=services.MAX_CARRIER)
    service = TextField(max_length=services.MAX_SERVICE, required=False, allow_blank=True,
                        default="")
    tracking_number = TextField(max_length=services.MAX_TRACKING, required=False, allow_blank=True,
                                allow_null=True)


class ShipmentUpdateIn(StrictSerializer):
    carrier = TextField(max_length=services.MAX_CARRIER, required=False)
    service = TextField(max_length=services.MAX_SERVICE, required=False, allow_blank=True)
    tracking_number = TextField(max_length=services.MAX_TRACKING, required=False, allow_blank=True,
                                allow_null=True)
    status = serializers.ChoiceField(choices=sorted(services.CARRIER_STATUSES), required=False,
                                     help_text="A carrier's scan of a shipped parcel.")


class ShipmentCancelIn(StrictSerializer):
    reason = TextField(max_length=500, required=False, allow_blank=True, default="")


class ShipmentFilters(serializers.Serializer):
    order_id = OrderRefField(required=False)
    status = serializers.ChoiceField(choices=Shipment.Status.choices, required=False)
    carrier = TextField(max_length=services.MAX_CARRIER, required=False)
    location_id = serializers.UUIDField(required=False)


class ShipmentItemOut(serializers.Serializer):
    id = serializers.UUIDField()
    order_item_id = serializers.UUIDField()
    product_id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()


class ShipmentOut(serializers.Serializer):
    id = serializers.UUIDField()
    order_id = serializers.UUIDField()
    location_id = serializers.UUIDField()
    carrier = serializers.CharField()
    service = serializers.CharField()
    tracking_number = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=Shipment.Status.choices)
    shipped_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    items = ShipmentItemOut(many=True)



def shipment_id(value: str) -> uuid.UUID:
    return parse_id(value, code="shipment_not_found", message="No such shipment.")


class ShipmentViewSet(ApiViewSet):
    scope = "fulfillment"
    lookup_value_regex = "[^/]+"  # a malformed id reaches the view and gets shipment_not_found
    action_scopes = {"track": "fulfillment:read"}

    def _detail(self, pk: uuid.UUID, status: int = 200) -> Response:
        body = selectors.shipment_detail(pk)
        return self.detail_response(body, version=body["version"], status=status)

    @extend_schema(parameters=[ShipmentFilters], responses=page_of(ShipmentOut, "ShipmentPage"))
    def list(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=ShipmentFilters,
                                   sort_fields=selectors.SORT_FIELDS)
        return self.list_response(
            selectors.shipment_rows(selectors.shipment_filter(**params.filters)), params,
                                  render=selectors.render_shipments)

    @extend_schema(request=ShipmentCreateIn, responses={201: ShipmentOut})
    def create(self, request: Request) -> Response:
        data = validated(ShipmentCreateIn, request.data)
        items = data.get("items")
        created = services.shipment_create(
            order_id=data["order_id"],
            items=None if items is None
            else [services.ShipmentLineInput(order_item_id=i["order_item_id"],
                                                                         quantity=i["quantity"])
                  for i in items],
            location_id=data.get("location_id"),
            carrier=data["carrier"],
            service=data.get("service", ""),
            tracking_number=data.get("tracking_number"),
            actor=actor_of(request),
        )
        return self._detail(created.shipment.id, status=201)

    @extend_schema(responses=ShipmentOut)
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._detail(shipment_id(pk))

    @extend_schema(request=ShipmentUpdateIn, responses=ShipmentOut, parameters=[IF_MATCH])
    def partial_update(self, request: Request, pk: str) -> Response:
        changes = validated(ShipmentUpdateIn, request.data, partial=True)
        shipment = services.shipment_update(shipment_id=shipment_id(pk),
                                            expected_version=expected_version(request),
                                            actor=actor_of(request), **changes)
        return self._detail(shipment.id)

    @extend_schema(request=ShipmentUpdateIn, responses=ShipmentOut, parameters=[IF_MATCH],
                   description=PUT_AS_PATCH)
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(request=None, responses=ShipmentOut)
    @action(detail=True, methods=["post"])
    def ship(self, request: Request, pk: str) -> Response:
        shipment = services.shipment_ship(shipment_id=shipment_id(pk), actor=actor_of(request))
        return self._detail(shipment.id)

    @extend_schema(request=None, responses=ShipmentOut)
    @action(detail=True, methods=["post"])
    def deliver(self, request: Request, pk: str) -> Response:
        shipment = services.shipment_deliver(shipment_id=shipment_id(pk), actor=actor_of(request))
        return self._detail(shipment.id)

    @extend_schema(request=ShipmentCancelIn, responses=ShipmentOut)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        data = validated(ShipmentCancelIn, request.data or {})
        shipment = services.shipment_cancel(shipment_id=shipment_id(pk), reason=data["reason"],
                                            actor=actor_of(request))
        return self._detail(shipment.id)

    @extend_schema(responses=ShipmentOut, operation_id="shipments_track")
    @action(detail=False, methods=["get"], url_path=r"track/(?P<tracking_number>[^/]{1,100})")
    def track(self, request: Request, tracking_number: str) -> Response:
        body = selectors.shipment_by_tracking(tracking_number)
        return self.detail_response(body, version=body["version"])


class EditAddIn(StrictSerializer):
    product_id = serializers.UUIDField(required=False)
    sku = TextField(max_length=64, required=False)
    quantity = StrictIntegerField(min_value=1, max_value=services.MAX_QUANTITY)
    unit_price = MoneyField(required=False,
                            help_text="The catalog's price unless the key holds orders:set_prices.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("product_id") and not attrs.get("sku"):
            raise serializers.ValidationError("Give product_id or sku.")
        return attrs


class EditChangeIn(StrictSerializer):
    order_item_id = serializers.UUIDField()
    quantity = StrictIntegerField(min_value=1, max_value=services.MAX_QUANTITY)


class OrderEditIn(StrictSerializer):
    add: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=EditAddIn(), required=False, max_length=services.MAX_LINES)
    change: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=EditChangeIn(), required=False, max_length=services.MAX_LINES)
    remove = serializers.ListField(child=serializers.UUIDField(), required=False,
                                   max_length=services.MAX_LINES)
    reason = TextField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs.get("add") or attrs.get("change") or attrs.get("remove")):
            raise serializers.ValidationError("Give at least one of add, change, remove.")
        return attrs


IF_MATCH_REQUIRED = OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=True,
                                     description="The ETag of the order you read (428 without it, "
                                                 "412 if it changed).")


# ``POST /orders/{id}/status`` and ``/orders/{id}/cancel`` are served here, above orders, because a
# cancellation also cancels the order's pending shipments (``services.order_cancel``).
class OrderStatusViewSet(ApiViewSet):

    scope = "orders"
    lookup_value_regex = "[^/]+"

    @extend_schema(request=StatusIn, responses=ORDER_OUT, parameters=[IF_MATCH], tags=["orders"])
    @action(detail=True, methods=["post"])
    def status(self, request: Request, pk: str) -> Response:
        data = validated(StatusIn, request.data)
        order = services.order_set_status(order_id=order_id(pk), to_status=data["status"],
                                          reason=data["reason"],
                                          actor=actor_of(request),
                                          expected_version=expected_version(request))
        body = orders_selectors.order_detail(order.id)
        return self.detail_response(body, version=body["version"])

    @extend_schema(request=CancelIn, responses=ORDER_OUT, parameters=[IF_MATCH], tags=["orders"])
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        data = validated(CancelIn, request.data or {})
        order = services.order_cancel(order_id=order_id(pk), reason=data["reason"],
                                      actor=actor_of(request),
                                      expected_version=expected_version(request))
        body = orders_selectors.order_detail(order.id)
        return self.detail_response(body, version=body["version"])

    @extend_schema(request=OrderEditIn, responses=ORDER_OUT, parameters=[IF_MATCH_REQUIRED],
                   tags=["orders"],
                   description="Add, change or remove lines of an order not yet shipped (pending, "
                               "confirmed, "
                               "processing, on_hold): stock moves by the difference only, totals "
                               "are recomputed.")
    @action(detail=True, methods=["post"])
    def edit(self, request: Request, pk: str) -> Response:
        data = validated(OrderEditIn, request.data)
        order = services.order_edit(
            order_id=order_id(pk), expected_version=expected_version(request),
            add=[orders_services.OrderLineInput(quantity=line["quantity"],
                                                product_id=line.get("product_id"),
                                                sku=line.get("sku"),
                                                unit_price=line.get("unit_price"))
                 for line in data.get("add", [])],
            change={line["order_item_id"]: line["quantity"] for line in data.get("change", [])},
            remove=data.get("remove", []), reason=data["reason"],
            set_prices=may_set_prices(request), actor=actor_of(request))
        body = orders_selectors.order_detail(order.id)
        return self.detail_response(body, version=body["version"])
