"""Inventory over REST (SPEC §4.3). Thin: validate the input, call one service or selector, render.

Quantities are JSON integers only (no strings, floats or booleans), between 1 and 1,000,000;
anything else is a 422 that writes nothing.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from inventory import selectors, services
from inventory.models import MAX_QUANTITY, Reservation, StockMovement
from stateset.api.pagination import parse_list_params
from stateset.api.serializers import (
    IF_MATCH,
    PUT_AS_PATCH,
    JsonObjectField,
    StrictBooleanField,
    StrictIntegerField,
    StrictSerializer,
    TextField,
    page_of,
    validated,
)
from stateset.api.views import ApiViewSet, actor_of, expected_version, parse_id
from stateset.csvio import csv_response
from stateset.errors import NotFound, ValidationFailed

UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
MAX_EXPIRES_IN = 30 * 24 * 3600



# --- strict JSON fields (the integer and boolean ones are the platform's) ------------------------


class StrictUUIDField(serializers.UUIDField):
    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


def quantity_field(**kwargs: Any) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=MAX_QUANTITY, **kwargs)


def count_field(**kwargs: Any) -> StrictIntegerField:
    return StrictIntegerField(min_value=0, max_value=MAX_QUANTITY, **kwargs)


def _text(max_length: int, **kwargs: Any) -> TextField:
    return TextField(max_length=max_length, **kwargs)


def _optional_text(max_length: int) -> TextField:
    return TextField(max_length=max_length, required=False, allow_blank=True, default="")


# --- input ---------------------------------------------------------------------------------------


class ProductRefIn(StrictSerializer):
    product_id = StrictUUIDField(required=False)
    sku = _text(64, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("product_id") and not attrs.get("sku"):
            raise serializers.ValidationError({"product_id": ["Give product_id or sku."]})
        return attrs


class ItemCreateIn(ProductRefIn):
    location_id = StrictUUIDField()
    on_hand = count_field()
    reorder_point = count_field(required=False, default=0)
    safety_stock = count_field(required=False, default=0)
    reason = _optional_text(services.MAX_REASON)


class ItemUpdateIn(StrictSerializer):
    reorder_point = count_field(required=False)
    safety_stock = count_field(required=False)
    allow_backorder = StrictBooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(
                "Give reorder_point, safety_stock or allow_backorder.")
        return attrs


class ReceiveIn(ProductRefIn):
    location_id = StrictUUIDField()
    quantity = quantity_field()
    reason = _optional_text(services.MAX_REASON)
    reference_type = _optional_text(services.MAX_REFERENCE_TYPE)
    reference_id = _optional_text(services.MAX_REFERENCE_ID)


class AdjustIn(ProductRefIn):
    location_id = StrictUUIDField()
    delta = StrictIntegerField(min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY)
    reason = _text(services.MAX_REASON)
    reference_type = _optional_text(services.MAX_REFERENCE_TYPE)
    reference_id = _optional_text(services.MAX_REFERENCE_ID)

    def validate_delta(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value


class TransferIn(ProductRefIn):
    from_location_id = StrictUUIDField()
    to_location_id = StrictUUIDField()
    quantity = quantity_field()
    reason = _optional_text(services.MAX_REASON)
    reference_id = _optional_text(services.MAX_REFERENCE_ID)


class BulkAdjustIn(StrictSerializer):
    # Rows stay unvalidated here: each one is answered on its own by the service.
    adjustments = serializers.ListField(allow_empty=False, max_length=services.MAX_LINES)


class BulkAdjustRowDoc(serializers.Serializer):
    product_id = serializers.UUIDField(required=False)
    sku = serializers.CharField(required=False)
    location_id = serializers.UUIDField()
    delta = serializers.IntegerField()
    reason = serializers.CharField()


class BulkAdjustDoc(serializers.Serializer):
    adjustments = BulkAdjustRowDoc(many=True)


class BulkAdjustQuery(StrictSerializer):
    dry_run = serializers.BooleanField(required=False, default=False)


class ReserveItemIn(ProductRefIn):
    quantity = quantity_field()
    location_id = StrictUUIDField(required=False)


class ReserveIn(StrictSerializer):
    items = ReserveItemIn(  # type: ignore[call-arg]  # ListSerializer's max_length: not in the stubs
        many=True, allow_empty=False, max_length=services.MAX_LINES)
    reference_type = _text(services.MAX_REFERENCE_TYPE)
    reference_id = _text(services.MAX_REFERENCE_ID)
    expires_in = StrictIntegerField(min_value=1, max_value=MAX_EXPIRES_IN, required=False,
                                    help_text="Seconds until the reservation expires; omit for "
                                              "never.")


class ReleaseIn(StrictSerializer):
    reservation_ids = serializers.ListField(child=StrictUUIDField(), allow_empty=False,
                                            max_length=services.MAX_LINES, required=False)
    reference_id = _text(services.MAX_REFERENCE_ID, required=False)
    reference_type = _text(services.MAX_REFERENCE_TYPE, required=False)
    reason = _optional_text(services.MAX_REASON)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("reservation_ids")) == bool(attrs.get("reference_id")):
            raise serializers.ValidationError(
                {"reservation_ids": ["Give reservation_ids or reference_id (one)."]})
        return attrs


class LocationIn(StrictSerializer):
    code = TextField(max_length=32)
    name = _text(200)
    priority = StrictIntegerField(min_value=-1_000_000, max_value=1_000_000, required=False,
                                  default=100)
    address = JsonObjectField(required=False, default=dict)
    is_active = StrictBooleanField(required=False, default=True)

    def validate_code(self, value: str) -> str:
        if not services.LOCATION_CODE_RE.match(value):
            raise serializers.ValidationError(
                "Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 32.")
        return value


class LocationUpdateIn(StrictSerializer):
    name = _text(200, required=False)
    priority = StrictIntegerField(min_value=-1_000_000, max_value=1_000_000, required=False)
    address = JsonObjectField(required=False)
    is_active = StrictBooleanField(required=False)


# --- query strings --------------------------------------------------------------------------------


class InventoryFilters(serializers.Serializer):
    sku = serializers.CharField(max_length=64, required=False)
    product_id = serializers.UUIDField(required=False)
    location_id = serializers.UUIDField(required=False)
    low_stock = serializers.BooleanField(required=False, allow_null=True, default=None)


class LowStockFilters(serializers.Serializer):
    location_id = serializers.UUIDField(required=False)


class LocationFilters(serializers.Serializer):
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)
    code = serializers.CharField(max_length=32, required=False)


class ReservationFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Reservation.Status.choices, required=False)
    reference_type = serializers.CharField(max_length=services.MAX_REFERENCE_TYPE, required=False)
    reference_id = serializers.CharField(max_length=services.MAX_REFERENCE_ID, required=False)
    sku = serializers.CharField(max_length=64, required=False)
    inventory_item_id = serializers.UUIDField(required=False)


class BackorderFilters(serializers.Serializer):
    product_id = serializers.UUIDField(required=False)
    sku = serializers.CharField(max_length=64, required=False)


class BackorderOut(serializers.Serializer):
    order_id = serializers.UUIDField()
    order_number = serializers.CharField()
    order_item_id = serializers.UUIDField()
    product_id = serializers.UUIDField()
    sku = serializers.CharField()
    quantity_backordered = serializers.IntegerField()
    created_at = serializers.DateTimeField(
        help_text="The order's: the queue is served oldest first.")


class ExtendIn(StrictSerializer):
    expires_in = StrictIntegerField(min_value=1, max_value=services.MAX_EXPIRES_IN,
                                    help_text="Seconds from now.")


class MovementFilters(serializers.Serializer):
    inventory_item_id = serializers.UUIDField(required=False)
    sku = serializers.CharField(max_length=64, required=False)
    location_id = serializers.UUIDField(required=False)
    kind = serializers.ChoiceField(choices=StockMovement.Kind.choices, required=False)
    reference_id = serializers.CharField(max_length=services.MAX_REFERENCE_ID, required=False)
    created_from = serializers.DateTimeField(required=False)
    created_to = serializers.DateTimeField(required=False, help_text="Exclusive upper bound.")


# --- output (documentation of the rendered shapes) ------------------------------------------------


class InventoryItemOut(serializers.Serializer):
    id = serializers.UUIDField()
    product_id = serializers.UUIDField()
    sku = serializers.CharField()
    location_id = serializers.UUIDField()
    location_code = serializers.CharField()
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField(help_text="on_hand − reserved")
    sellable = serializers.IntegerField(
        help_text="What may be reserved or ordered: available − safety_stock, at least 0.")
    reorder_point = serializers.IntegerField()
    safety_stock = serializers.IntegerField(help_text="Held back from sale.")
    allow_backorder = serializers.BooleanField()
    low_stock = serializers.BooleanField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class LocationOut(serializers.Serializer):
    id = serializers.UUIDField()
    code = serializers.CharField()
    name = serializers.CharField()
    address = serializers.DictField()
    is_active = serializers.BooleanField()
    priority = serializers.IntegerField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ReservationOut(serializers.Serializer):
    id = serializers.UUIDField()
    inventory_item_id = serializers.UUIDField()
    product_id = serializers.UUIDField()
    sku = serializers.CharField()
    location_id = serializers.UUIDField()
    quantity = serializers.IntegerField()
    quantity_fulfilled = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Reservation.Status.choices)
    reference_type = serializers.CharField()
    reference_id = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    line_index = serializers.IntegerField(
        required=False, help_text="In the answer to a reserve: the request line it serves.")


class MovementOut(serializers.Serializer):
    id = serializers.UUIDField()
    inventory_item_id = serializers.UUIDField()
    sku = serializers.CharField()
    location_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=StockMovement.Kind.choices)
    on_hand_delta = serializers.IntegerField()
    reserved_delta = serializers.IntegerField()
    on_hand_after = serializers.IntegerField()
    reserved_after = serializers.IntegerField()
    reason = serializers.CharField()
    reference_type = serializers.CharField()
    reference_id = serializers.CharField()
    actor = serializers.CharField()
    created_at = serializers.DateTimeField()


RESERVATIONS_OUT = inline_serializer(name="ReservationsOut", fields={
    "reservations": ReservationOut(many=True),
    "released": serializers.IntegerField(required=False)})
TRANSFER_OUT = inline_serializer(name="TransferOut",
                                 fields={"from": InventoryItemOut(), "to": InventoryItemOut()})
class BulkRowErrorOut(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(required=False)


class BulkRowOut(serializers.Serializer):
    index = serializers.IntegerField(help_text="The adjustment's position in the request.")
    ok = serializers.BooleanField()
    error = BulkRowErrorOut(required=False, help_text="Why the row was refused (ok: false).")


BULK_OUT = inline_serializer(name="BulkAdjustOut", fields={
    "results": BulkRowOut(many=True),
    "applied": serializers.IntegerField(),
    "valid": serializers.IntegerField(), "dry_run": serializers.BooleanField()})



def _item(item: Any) -> dict[str, Any]:
    return selectors.render_item(selectors.item_row(item))


def _reservation(reservation: Reservation) -> dict[str, Any]:
    body = selectors.render_reservation(selectors.reservation_row(reservation))
    line = getattr(reservation, "line_index", None)
    if line is not None:
        body["line_index"] = line
    return body


def _render(render_one: Any) -> Any:
    return lambda rows: [render_one(row) for row in rows]


# --- views ---------------------------------------------------------------------------------------


class InventoryViewSet(ApiViewSet):
    """``/inventory``: rows, stock moves, reservations and the ledger. Scope ``inventory``."""

    scope = "inventory"
    lookup_value_regex = UUID_PATTERN

    @extend_schema(parameters=[InventoryFilters],
                   responses=page_of(InventoryItemOut, "InventoryPage"))
    def list(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=InventoryFilters,
                                   sort_fields={"created_at": "created_at"})
        return self.list_response(selectors.inventory_list(**params.filters), params,
                                  render=_render(selectors.render_item))

    @extend_schema(responses=InventoryItemOut)
    def retrieve(self, request: Request, pk: str) -> Response:
        item_id = uuid.UUID(pk)
        body = selectors.inventory_detail(item_id)
        if body is None:
            raise NotFound("No such inventory row.", code="inventory_not_found")
        return self.detail_response(body, version=body["version"])

    @extend_schema(request=ItemCreateIn, responses={201: InventoryItemOut})
    def create(self, request: Request) -> Response:
        data = validated(ItemCreateIn, request.data)
        item = services.inventory_item_create(actor=actor_of(request), **data)
        return self.detail_response(_item(item), version=item.version, status=201)

    @extend_schema(request=ItemUpdateIn, responses=InventoryItemOut, parameters=[IF_MATCH])
    def partial_update(self, request: Request, pk: str) -> Response:
        data = validated(ItemUpdateIn, request.data)
        item = services.inventory_item_update(item_id=uuid.UUID(pk), changes=data,
                                              expected_version=expected_version(request),
                                              actor=actor_of(request))
        return self.detail_response(_item(item), version=item.version)

    @extend_schema(request=ItemUpdateIn, responses=InventoryItemOut, parameters=[IF_MATCH],
                   description=PUT_AS_PATCH)
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(parameters=[LowStockFilters],
                   responses=page_of(InventoryItemOut, "LowStockPage"))
    @action(detail=False, methods=["get"], url_path="low-stock", url_name="low-stock")
    def low_stock(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=LowStockFilters,
                                   sort_fields={"available": "available",
                                                "created_at": "created_at"},
                                   default_sort="available", default_order="asc")
        return self.list_response(selectors.low_stock_list(**params.filters), params,
                                  render=_render(selectors.render_item))

    # --- stock moves ------------------------------------------------------------------------------

    @extend_schema(request=ReceiveIn, responses=InventoryItemOut)
    @action(detail=False, methods=["post"])
    def receive(self, request: Request) -> Response:
        data = validated(ReceiveIn, request.data)
        item = services.stock_receive(actor=actor_of(request), **data)
        return Response(_item(item))

    @extend_schema(request=AdjustIn, responses=InventoryItemOut)
    @action(detail=False, methods=["post"])
    def adjust(self, request: Request) -> Response:
        data = validated(AdjustIn, request.data)
        item = services.stock_adjust(actor=actor_of(request), **data)
        return Response(_item(item))

    @extend_schema(request=TransferIn, responses=TRANSFER_OUT)
    @action(detail=False, methods=["post"])
    def transfer(self, request: Request) -> Response:
        data = validated(TransferIn, request.data)
        source, target = services.stock_transfer(actor=actor_of(request), **data)
        return Response({"from": _item(source), "to": _item(target)})

    @extend_schema(request=BulkAdjustDoc, responses=BULK_OUT, parameters=[BulkAdjustQuery])
    @action(detail=False, methods=["post"], url_path="bulk-adjust", url_name="bulk-adjust")
    def bulk_adjust(self, request: Request) -> Response:
        query = {key: request.query_params.get(key) for key in request.query_params}
        unknown = sorted(set(query) - {"dry_run"})
        if unknown:
            raise ValidationFailed(f"Unknown query parameter(s): {', '.join(unknown)}.",
                                   code="invalid_parameter",
                                   details={"unknown": unknown, "allowed": ["dry_run"]})
        options = validated(BulkAdjustQuery, query)
        data = validated(BulkAdjustIn, request.data)
        result = services.stock_bulk_adjust(adjustments=data["adjustments"],
                                            dry_run=options["dry_run"], actor=actor_of(request))
        return Response(result.as_dict())

    # --- reservations -----------------------------------------------------------------------------

    @extend_schema(request=ReserveIn, responses={201: RESERVATIONS_OUT})
    @action(detail=False, methods=["post"])
    def reserve(self, request: Request) -> Response:
        data = validated(ReserveIn, request.data)
        expires_at = (timezone.now() + timedelta(seconds=data["expires_in"])
                      if data.get("expires_in") else None)
        reservations = services.stock_reserve(
            lines=[services.ReserveLine(quantity=line["quantity"],
                                        product_id=line.get("product_id"),
                                        sku=line.get("sku"), location_id=line.get("location_id"))
                   for line in data["items"]],
            reference_type=data["reference_type"], reference_id=data["reference_id"],
            expires_at=expires_at, actor=actor_of(request),
        )
        return Response({"reservations": [_reservation(r) for r in reservations]}, status=201)

    @extend_schema(request=ReleaseIn, responses=RESERVATIONS_OUT)
    @action(detail=False, methods=["post"])
    def release(self, request: Request) -> Response:
        data = validated(ReleaseIn, request.data)
        released = services.stock_release(
            reservation_ids=data.get("reservation_ids"), reference_type=data.get("reference_type"),
            reference_id=data.get("reference_id"), reason=data["reason"], actor=actor_of(request),
        )
        return Response({"reservations": [_reservation(r) for r in released],
                         "released": len(released)})

    @extend_schema(parameters=[ReservationFilters],
                   responses=page_of(ReservationOut, "ReservationPage"))
    @action(detail=False, methods=["get"])
    def reservations(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=ReservationFilters,
                                   sort_fields={"created_at": "created_at"})
        return self.list_response(selectors.reservation_list(**params.filters), params,
                                  render=_render(selectors.render_reservation))

    @extend_schema(request=ExtendIn, responses=ReservationOut,
                   description="Move an active, expiring reservation's expiry to now + expires_in "
                               "seconds.")
    @action(detail=False, methods=["post"],
            url_path=r"reservations/(?P<reservation_id>[0-9a-fA-F-]{36})/extend",
            url_name="reservation-extend")
    def extend_reservation(self, request: Request, reservation_id: str) -> Response:
        data = validated(ExtendIn, request.data)
        reservation = services.reservation_extend(reservation_id=parse_id(reservation_id,
                                                                          code="reservation_not_found"),
                                                  expires_in=data["expires_in"])
        return Response(_reservation(reservation))

    @extend_schema(parameters=[BackorderFilters], responses=page_of(BackorderOut, "BackorderPage"),
                   description="Order lines waiting for stock, oldest order first (the order they "
                               "are served in).")
    @action(detail=False, methods=["get"])
    def backorders(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=BackorderFilters,
                                   sort_fields={"created_at": "queued_at"},
                                   default_sort="created_at", default_order="asc")
        return self.list_response(selectors.backorder_queue(**params.filters), params,
                                  render=_render(selectors.render_backorder))

    @extend_schema(parameters=[MovementFilters], responses=page_of(MovementOut, "MovementPage"))
    @action(detail=False, methods=["get"])
    def movements(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=MovementFilters,
                                   sort_fields={"created_at": "created_at"})
        return self.list_response(selectors.movement_list(**params.filters), params,
                                  render=_render(selectors.render_movement))

    @extend_schema(parameters=[InventoryFilters], responses={(200, "text/csv"): OpenApiTypes.STR},
                   operation_id="inventory_export_csv",
                   description="Every matching row, streamed; re-importable (POST "
                               "/imports?kind=inventory).")
    @action(detail=False, methods=["get"], url_path=r"export\.csv", url_name="export")
    def export(self, request: Request) -> StreamingHttpResponse:
        params = parse_list_params(request.query_params, filters=InventoryFilters)
        rows = selectors.inventory_export_rows(selectors.inventory_list(**params.filters))
        return csv_response("inventory.csv", selectors.EXPORT_COLUMNS, rows)

    @extend_schema(parameters=[MovementFilters], responses={(200, "text/csv"): OpenApiTypes.STR},
                   operation_id="inventory_movements_export_csv",
                   description="The ledger, newest first, streamed.")
    @action(detail=False, methods=["get"], url_path=r"movements/export\.csv",
            url_name="movements-export")
    def movements_export(self, request: Request) -> StreamingHttpResponse:
        params = parse_list_params(request.query_params, filters=MovementFilters)
        rows = selectors.movement_export_rows(selectors.movement_list(**params.filters))
        return csv_response("movements.csv", selectors.MOVEMENT_EXPORT_COLUMNS, rows)


class LocationViewSet(ApiViewSet):
    """``/locations``. Scope ``inventory``."""

    scope = "inventory"
    lookup_value_regex = UUID_PATTERN

    @extend_schema(parameters=[LocationFilters], responses=page_of(LocationOut, "LocationPage"))
    def list(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=LocationFilters,
                                   sort_fields={"priority": "priority", "code": "code",
                                                "created_at": "created_at"},
                                   default_sort="priority", default_order="asc")
        return self.list_response(selectors.location_list(**params.filters), params,
                                  render=_render(selectors.render_location))

    @extend_schema(responses=LocationOut)
    def retrieve(self, request: Request, pk: str) -> Response:
        body = selectors.location_detail(uuid.UUID(pk))
        if body is None:
            raise NotFound("No such location.", code="location_not_found")
        return self.detail_response(body, version=body["version"])

    @extend_schema(request=LocationIn, responses={201: LocationOut})
    def create(self, request: Request) -> Response:
        data = validated(LocationIn, request.data)
        location = services.location_create(**data)
        return self.detail_response(selectors.location_row(location), version=location.version,
                                    status=201)

    @extend_schema(request=LocationUpdateIn, responses=LocationOut, parameters=[IF_MATCH])
    def partial_update(self, request: Request, pk: str) -> Response:
        data = validated(LocationUpdateIn, request.data)
        if not data:
            raise ValidationFailed("Nothing to change.",
                                   details={"non_field_errors": ["Give a field to change."]})
        location = services.location_update(location_id=uuid.UUID(pk),
                                            expected_version=expected_version(request),
                                            actor=actor_of(request), **data)
        return self.detail_response(selectors.location_row(location), version=location.version)


    @extend_schema(request=LocationUpdateIn, responses=LocationOut, parameters=[IF_MATCH],
                   description=PUT_AS_PATCH)
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)
