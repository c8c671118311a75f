"""Returns over REST (SPEC §4.6). Thin: validate, call one service or selector, render."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from orders.api import OrderRefField
from returns import selectors, services
from returns.models import Return, ReturnItem
from stateset.api.pagination import parse_list_params
from stateset.api.serializers import (
    IF_MATCH,
    MoneyField,
    StrictBooleanField,
    StrictIntegerField,
    StrictSerializer,
    TextField,
    page_of,
    validated,
)
from stateset.api.views import ApiViewSet, actor_of, expected_version, parse_id


class ReturnItemIn(StrictSerializer):
    order_item_id = serializers.UUIDField()
    quantity = StrictIntegerField(min_value=1, max_value=services.MAX_QUANTITY)
    condition = serializers.ChoiceField(choices=ReturnItem.Condition.choices)
    restock = StrictBooleanField(required=False, default=True)
    location_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class ReturnCreateIn(StrictSerializer):
    order_id = OrderRefField()
    reason = TextField(max_length=500, required=False, allow_blank=True, default="")
    notes = TextField(max_length=5000, required=False, allow_blank=True, default="")
    items = ReturnItemIn(  # type: ignore[call-arg]  # ListSerializer's max_length: not in the stubs
        many=True, allow_empty=False, max_length=services.MAX_LINES)


class ReturnActionIn(StrictSerializer):
    note = TextField(max_length=500, required=False, allow_blank=True, default="",
                     help_text="Appended to the return's notes as '<new status>: <note>'.")


class ReceiveItemIn(StrictSerializer):
    return_item_id = serializers.UUIDField()
    condition = serializers.ChoiceField(choices=ReturnItem.Condition.choices)
    restock = StrictBooleanField(required=False, default=True)
    location_id = serializers.UUIDField(required=False, allow_null=True, default=None,
                                        help_text="Default: the line's own, else where it "
                                                  "shipped from.")


class ReturnReceiveIn(ReturnActionIn):
    items = ReceiveItemIn(  # type: ignore[call-arg]  # ListSerializer's max_length: not in the stubs
        many=True, required=False, max_length=services.MAX_LINES,
        help_text="What the warehouse found, per return line (lines not named stay as "
                  "requested).")


class ReturnFilters(serializers.Serializer):
    order_id = OrderRefField(required=False)
    status = serializers.ChoiceField(choices=Return.Status.choices, required=False)


class ReturnItemOut(serializers.Serializer):
    id = serializers.UUIDField()
    order_item_id = serializers.UUIDField()
    sku = serializers.CharField()
    product_id = serializers.UUIDField()
    unit_price = MoneyField()
    quantity = serializers.IntegerField()
    condition = serializers.ChoiceField(choices=ReturnItem.Condition.choices)
    restock = serializers.BooleanField()
    location_id = serializers.UUIDField(allow_null=True)
    refund_amount = MoneyField(allow_null=True, help_text="This line's share of the refund, once "
                                                          "refunded.")


class ReturnOut(serializers.Serializer):
    id = serializers.UUIDField()
    rma_number = serializers.CharField()
    order_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Return.Status.choices)
    reason = serializers.CharField()
    refund_amount = MoneyField(allow_null=True)
    currency = serializers.CharField()
    notes = serializers.CharField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    items = ReturnItemOut(many=True)


RETURN_PAGE = page_of(ReturnOut, "ReturnPage")



def return_id(value: str) -> uuid.UUID:
    return parse_id(value, code="return_not_found", message="No such return.")


class ReturnViewSet(ApiViewSet):
    scope = "returns"
    lookup_value_regex = "[^/]+"  # a malformed id reaches the view and gets return_not_found
    # SPEC §5: receiving and refunding are moves of their own for staff sessions.
    staff_permissions = {"receive": "returns.receive_return", "refund": "returns.refund_return"}

    @extend_schema(parameters=[ReturnFilters], responses=RETURN_PAGE)
    def list(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=ReturnFilters,
                                   sort_fields=selectors.SORT_FIELDS)
        return self.list_response(selectors.return_rows(selectors.return_filter(**params.filters)),
                                  params, render=selectors.render_page)

    @extend_schema(request=ReturnCreateIn, responses={201: ReturnOut})
    def create(self, request: Request) -> Response:
        data = validated(ReturnCreateIn, request.data)
        created = services.return_create(
            order_id=data["order_id"],
            reason=data["reason"],
            notes=data["notes"],
            items=[services.ReturnLineInput(order_item_id=item["order_item_id"],
                                            quantity=item["quantity"],
                                            condition=item["condition"], restock=item["restock"],
                                            location_id=item["location_id"])
                   for item in data["items"]],
            actor=actor_of(request),
        )
        body = selectors.return_detail(created.rma.id)
        return self.detail_response(body, version=body["version"], status=201)

    @extend_schema(responses=ReturnOut)
    def retrieve(self, request: Request, pk: str) -> Response:
        body = selectors.return_detail(return_id(pk))
        return self.detail_response(body, version=body["version"])

    def _act(self, request: Request, pk: str, verb: str) -> Response:
        data = validated(ReturnReceiveIn if verb == "receive" else ReturnActionIn,
                         request.data or {})
        found = {"found": [services.ReceiveLineInput(**item) for item in data["items"]]
                 } if data.get("items") else {}
        rma = services.ACTIONS[verb](return_id=return_id(pk), note=data["note"],
                                     actor=actor_of(request),
                                     expected_version=expected_version(request), **found)
        body = selectors.return_detail(rma.id)
        return self.detail_response(body, version=body["version"])

    @extend_schema(request=ReturnActionIn, responses=ReturnOut, parameters=[IF_MATCH])
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        return self._act(request, pk, "approve")

    @extend_schema(request=ReturnActionIn, responses=ReturnOut, parameters=[IF_MATCH])
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        return self._act(request, pk, "reject")

    @extend_schema(request=ReturnReceiveIn, responses=ReturnOut, parameters=[IF_MATCH])
    @action(detail=True, methods=["post"])
    def receive(self, request: Request, pk: str) -> Response:
        return self._act(request, pk, "receive")

    @extend_schema(request=ReturnActionIn, responses=ReturnOut, parameters=[IF_MATCH])
    @action(detail=True, methods=["post"])
    def refund(self, request: Request, pk: str) -> Response:
        return self._act(request, pk, "refund")

    @extend_schema(request=ReturnActionIn, responses=ReturnOut, parameters=[IF_MATCH])
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        return self._act(request, pk, "close")

    @extend_schema(request=ReturnActionIn, responses=ReturnOut, parameters=[IF_MATCH])
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._act(request, pk, "cancel")
