"""Orders over REST (SPEC §4.4). Thin: validate, call one service or selector, render."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from orders import selectors, services
from orders.models import Order, Payment
from stateset.api.auth import granted_scopes
from stateset.api.pagination import parse_list_params
from stateset.api.serializers import (
    IF_MATCH,
    PUT_AS_PATCH,
    JsonObjectField,
    MoneyField,
    StrictDecimalField,
    StrictIntegerField,
    StrictSerializer,
    TextField,
    page_of,
    validated,
)
from stateset.api.views import ApiView, ApiViewSet, actor_of, expected_version, parse_id
from stateset.csvio import csv_response
from stateset.errors import NotFound
from stateset.keys import scope_allows

MAX_QUANTITY = 10_000



class AddressIn(serializers.Serializer):
    name = TextField(max_length=200, required=False, allow_blank=True)
    line1 = TextField(max_length=200)
    line2 = TextField(max_length=200, required=False, allow_blank=True)
    city = TextField(max_length=100)
    region = TextField(max_length=100, required=False, allow_blank=True)
    postal_code = TextField(max_length=20, required=False, allow_blank=True)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", max_length=2,
                                     error_messages={"invalid": "Use an ISO 3166-1 alpha-2 code."})
    phone = TextField(max_length=32, required=False, allow_blank=True)

    def validate_country(self, value: str) -> str:
        return value.upper()


class TaxIn(StrictSerializer):
    name = TextField(max_length=64)
    rate = StrictDecimalField(max_digits=7, decimal_places=6, min_value=0,
                              max_value=Decimal("0.999999"))
    amount = MoneyField()


class OrderItemIn(StrictSerializer):
    product_id = serializers.UUIDField(required=False)
    sku = TextField(max_length=64, required=False)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY)
    unit_price = MoneyField(required=False, help_text=(
        "The catalog's price unless the key holds orders:set_prices (then any price; the catalog's "
        "is "
        "kept as list_price)."))
    discount = MoneyField(required=False, help_text="An amount off this line's total.")
    taxes: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=TaxIn(), required=False, max_length=services.MAX_TAXES,
        help_text="The channel's own taxes for this line (orders:set_prices only).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("product_id") and not attrs.get("sku"):
            raise serializers.ValidationError("Give product_id or sku.")
        return attrs


class ShippingLineIn(StrictSerializer):
    method = TextField(max_length=100)
    amount = MoneyField()
    taxes: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=TaxIn(), required=False, max_length=services.MAX_TAXES,
        help_text="The channel's own taxes for this line (orders:set_prices only).")


class DiscountIn(StrictSerializer):
    code = TextField(max_length=64, required=False, allow_blank=True, default="")
    description = TextField(max_length=255, required=False, allow_blank=True, default="")
    amount = MoneyField()


class OrderCreateIn(StrictSerializer):
    customer_id = serializers.UUIDField()
    items: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=OrderItemIn(), allow_empty=False, max_length=services.MAX_LINES)
    shipping_lines: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=ShippingLineIn(), required=False, max_length=services.MAX_SHIPPING_LINES)
    discounts: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=DiscountIn(), required=False, max_length=services.MAX_DISCOUNTS,
        help_text="Order discounts, spread over the lines in proportion to their totals.")
    currency = TextField(min_length=3, max_length=3, required=False,
                         help_text="Default: the products' currency.")
    channel = TextField(max_length=32, required=False, default="api")
    external_id = TextField(max_length=128, required=False, allow_blank=True, default="",
                            help_text="The channel's own order id: (channel, external_id) is "
                                      "unique.")
    total_amount = MoneyField(required=False,
                              help_text="When given, must equal the computed total (422 "
                                        "total_mismatch).")
    shipping_address = AddressIn(required=False, allow_null=True)
    billing_address = AddressIn(required=False, allow_null=True)
    notes = TextField(max_length=5000, required=False, allow_blank=True, default="")
    metadata = JsonObjectField(required=False, default=dict)


class OrderUpdateIn(StrictSerializer):
    notes = TextField(max_length=5000, required=False, allow_blank=True)
    shipping_address = AddressIn(required=False, allow_null=True)
    billing_address = AddressIn(required=False, allow_null=True)
    metadata = JsonObjectField(required=False)


RECORDABLE_PAYMENT = ["authorized", "paid"]  # refunds set the other payment statuses


class PaymentIn(StrictSerializer):
    payment_status = serializers.ChoiceField(choices=RECORDABLE_PAYMENT)
    reference = TextField(max_length=200, required=False, allow_blank=True, default="",
                          help_text="The payment gateway's reference, kept on the timeline.")


class StatusIn(StrictSerializer):
    status = serializers.ChoiceField(choices=Order.Status.choices)
    reason = TextField(max_length=500, required=False, allow_blank=True, default="")


class CancelIn(StrictSerializer):
    reason = TextField(max_length=500, required=False, allow_blank=True, default="")


class PaymentCreateIn(StrictSerializer):
    kind = serializers.ChoiceField(choices=list(services.PAYMENT_ACTS), help_text=(
        "The act: authorize, capture, void or refund (the stored row's kind is authorization, "
        "capture, "
        "void or refund)."))
    amount = MoneyField(required=False, help_text="Default: the most the act allows.")
    provider = TextField(max_length=64, required=False, allow_blank=True, default="")
    reference = TextField(max_length=255, required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(choices=Payment.Status.choices, required=False,
                                     default="succeeded",
                                     help_text="A failed attempt is recorded, changes no amount.")


class OrderFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False)
    customer_id = serializers.UUIDField(required=False)
    channel = TextField(max_length=32, required=False)
    external_id = TextField(max_length=128, required=False)
    backordered = serializers.BooleanField(required=False, allow_null=True, default=None)
    created_from = serializers.DateTimeField(required=False)
    created_to = serializers.DateTimeField(required=False)
    search = TextField(max_length=254, required=False, trim_whitespace=True)


class OrderListFilters(OrderFilters):
    include_items = serializers.BooleanField(required=False, default=False)



def _order_lines(items: list[dict[str, Any]]) -> list[services.OrderLineInput]:
    return [services.OrderLineInput(quantity=item["quantity"], product_id=item.get("product_id"),
                                    sku=item.get("sku"), unit_price=item.get("unit_price"),
                                    discount=item.get("discount"),
                                    taxes=[dict(tax) for tax in item["taxes"]] if "taxes" in item
                                    else None)
            for item in items]


def may_set_prices(request: Request) -> bool:
    """Whether the caller may price an order itself: ``orders:set_prices``, granted by name only."""
    return scope_allows(granted_scopes(request.user), "orders:set_prices")


class TaxOut(serializers.Serializer):
    name = serializers.CharField()
    rate = serializers.DecimalField(max_digits=7, decimal_places=6)
    amount = MoneyField()


class OrderItemOut(serializers.Serializer):
    id = serializers.UUIDField()
    order_id = serializers.UUIDField()
    product_id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = MoneyField()
    list_price = MoneyField(allow_null=True,
                            help_text="The catalog's price (null when the product is priced in "
                                                       "another currency).")
    total_price = MoneyField(help_text="unit_price × quantity")
    discount_total = MoneyField(
        help_text="Its own discount plus its share of the order's discounts.")
    net_total = MoneyField(help_text="total_price − discount_total")
    tax_total = MoneyField()
    taxes = TaxOut(many=True)
    quantity_fulfilled = serializers.IntegerField()
    quantity_returned = serializers.IntegerField()
    quantity_backordered = serializers.IntegerField(help_text="Units still waiting for stock.")


class ShippingLineOut(serializers.Serializer):
    id = serializers.UUIDField()
    method = serializers.CharField()
    amount = MoneyField()
    tax_total = MoneyField()
    taxes = TaxOut(many=True)


class PaymentOut(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Payment.Kind.choices)
    amount = MoneyField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    provider = serializers.CharField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()


class PaymentRecordedOut(serializers.Serializer):
    payment = PaymentOut()
    payment_status = serializers.ChoiceField(choices=Order.PaymentStatus.choices)


class OrderSummaryOut(serializers.Serializer):
    id = serializers.UUIDField()
    order_number = serializers.CharField()
    customer_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Order.Status.choices)
    payment_status = serializers.ChoiceField(choices=Order.PaymentStatus.choices)
    fulfillment_status = serializers.ChoiceField(choices=Order.FulfillmentStatus.choices)
    currency = serializers.CharField()
    subtotal = MoneyField(help_text="Σ lines' total_price, before any discount.")
    tax_total = MoneyField()
    shipping_total = MoneyField()
    discount_total = MoneyField(help_text="Σ lines' discount_total.")
    total_amount = MoneyField()
    channel = serializers.CharField()
    external_id = serializers.CharField()
    backordered = serializers.BooleanField(help_text="True while any line has backordered units.")
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    items = OrderItemOut(many=True, required=False, help_text="Only with include_items=true.")


class OrderEventOut(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    message = serializers.CharField()
    # Named like Serializer.data: the metaclass moves declared fields off the class (no shadowing).
    data = serializers.DictField()  # type: ignore[assignment]  # see above
    actor = serializers.CharField()
    created_at = serializers.DateTimeField()


class OrderCustomerOut(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()


def _listed_component(name: str) -> type[serializers.ListField]:
    """A list of a component an app above orders documents (its rows come from the section it
    registers, ``orders.selectors.register_detail_section``): referenced by name, not imported."""

    @extend_schema_field({"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}})
    class Listed(serializers.ListField):
        pass

    return Listed


class OrderOut(OrderSummaryOut):
    items = OrderItemOut(many=True)
    customer = OrderCustomerOut()
    shipping_address = AddressIn(allow_null=True)
    billing_address = AddressIn(allow_null=True)
    notes = serializers.CharField()
    metadata = serializers.DictField()
    discounts = DiscountIn(many=True)
    taxes_included = serializers.BooleanField(
        help_text="Whether the prices included tax when the order was priced.")
    shipping_lines = ShippingLineOut(many=True)
    payments = PaymentOut(many=True)
    shipments = _listed_component("ShipmentOut")()
    returns = _listed_component("ReturnOut")()
    timeline = OrderEventOut(many=True)


ORDER_OUT = OrderOut
PAYMENT_PAGE = page_of(PaymentOut, "PaymentPage")
ORDER_PAGE = page_of(OrderSummaryOut, "OrderPage")


ORDER_NUMBER_RE = re.compile(r"[A-Za-z0-9-]{1,32}")  # what GET /orders/by-number/{number} takes


def order_id(value: str) -> uuid.UUID:
    """An order route's ``{id}`` (SPEC §3): the order's UUID, or else its number (``ORD-000123``, in
    any letter case, as the reference system and its SDK name orders), looked up through
    ``order_number_idx`` (one index probe per partition). Anything else is ``order_not_found``."""
    try:
        return uuid.UUID(value)
    except ValueError:
        pass
    if ORDER_NUMBER_RE.fullmatch(value):
        return selectors.order_id_by_number(value)
    return parse_id(value, code="order_not_found", message="No such order.")


NO_ORDER = uuid.UUID(int=0)  # what an unknown order number stands for: matches no order
ORDER_NUMBER_SHAPE = re.compile(r"ORD-[0-9]{1,28}", re.IGNORECASE)  # what the sequence writes


@extend_schema_field({"type": "string",
                      "description": "The order's id (UUID) or its number (ORD-000123)."})
class OrderRefField(serializers.Field):
    """An order named in a body or a filter (SPEC §3: orders are named by id or by number): its
    UUID, or its number resolved to the id (one index probe per partition). An unknown number is
    :data:`NO_ORDER`, so it finds nothing as an unknown UUID does (an empty list, 422
    ``order_not_found`` for a new shipment or return)."""

    default_error_messages = {"invalid": "Give the order's id or its number."}

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            return uuid.UUID(data)
        except ValueError:
            pass
        if not ORDER_NUMBER_SHAPE.fullmatch(data.strip()):
            self.fail("invalid")
        try:
            return selectors.order_id_by_number(data)
        except NotFound:
            return NO_ORDER

    def to_representation(self, value: Any) -> str:
        return str(value)


class OrderViewSet(ApiViewSet):
    scope = "orders"
    lookup_value_regex = "[^/]+"  # a malformed id reaches the view and gets order_not_found
    action_scopes = {"export": "orders:read", "events": "orders:read", "by_number": "orders:read"}
    # SPEC §5: recording a payment is a move of its own for staff sessions (Finance's).
    staff_permissions = {"payment": "orders.record_payment", "payments": "orders.record_payment"}

    @extend_schema(parameters=[OrderListFilters], responses=ORDER_PAGE)
    def list(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=OrderListFilters,
                                   sort_fields=selectors.SORT_FIELDS)
        filters = dict(params.filters)
        include_items = filters.pop("include_items", False)
        return self.list_response(
            selectors.order_filter(selectors.order_summaries(), **filters),
            params,
            render=lambda rows: selectors.render_summaries(rows, include_items=include_items),
        )

    @extend_schema(request=OrderCreateIn, responses={201: ORDER_OUT})
    def create(self, request: Request) -> Response:
        data = validated(OrderCreateIn, request.data)
        created = services.order_create(
            customer_id=data["customer_id"],
            items=_order_lines(data["items"]),
            shipping_lines=[services.ShippingLineInput(method=line["method"], amount=line["amount"],
                                                       taxes=[dict(t) for t in line["taxes"]]
                                                       if "taxes" in line else None)
                            for line in data.get("shipping_lines", [])],
            discounts=[services.DiscountInput(**discount)
                       for discount in data.get("discounts", [])],
            currency=data.get("currency"),
            channel=data.get("channel", "api"),
            external_id=data.get("external_id", ""),
            total_amount=data.get("total_amount"),
            set_prices=may_set_prices(request),
            shipping_address=data.get("shipping_address"),
            billing_address=data.get("billing_address"),
            notes=data.get("notes", ""),
            metadata=data.get("metadata") or {},
            actor=actor_of(request),
        )
        body = selectors.render_created(created)
        return self.detail_response(body, version=body["version"], status=201)

    @extend_schema(responses=ORDER_OUT)
    def retrieve(self, request: Request, pk: str) -> Response:
        body = selectors.order_detail(order_id(pk))
        return self.detail_response(body, version=body["version"])

    @extend_schema(request=OrderUpdateIn, responses=ORDER_OUT, parameters=[IF_MATCH])
    def partial_update(self, request: Request, pk: str) -> Response:
        changes = validated(OrderUpdateIn, request.data, partial=True)
        order = services.order_update(order_id=order_id(pk), changes=changes,
                                      expected_version=expected_version(request),
                                      actor=actor_of(request))
        body = selectors.order_detail(order.id)
        return self.detail_response(body, version=body["version"])

    @extend_schema(request=OrderUpdateIn, responses=ORDER_OUT, parameters=[IF_MATCH],
                   description=PUT_AS_PATCH)
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(request=PaymentIn, responses=ORDER_OUT, parameters=[IF_MATCH],
                   description="Record the payment a gateway authorized or captured: pending → "
                               "authorized → paid.")
    @action(detail=True, methods=["post"])
    def payment(self, request: Request, pk: str) -> Response:
        data = validated(PaymentIn, request.data)
        order = services.order_record_payment(order_id=order_id(pk),
                                              payment_status=data["payment_status"],
                                              reference=data["reference"], actor=actor_of(request),
                                              expected_version=expected_version(request))
        body = selectors.order_detail(order.id)
        return self.detail_response(body, version=body["version"])

    @extend_schema(request=PaymentCreateIn, responses={201: PaymentRecordedOut},
                   parameters=[IF_MATCH], methods=["POST"],
                   description="Record what a payment provider did: authorize, capture, void or "
                               "refund, within "
                               "the order's bounds (409 payment_exceeds beyond them).")
    @extend_schema(responses=PAYMENT_PAGE, methods=["GET"],
                   description="The order's payments, oldest first.")
    @action(detail=True, methods=["get", "post"])
    def payments(self, request: Request, pk: str) -> Response:
        if request.method == "GET":
            params = parse_list_params(request.query_params,
                                       sort_fields={"created_at": "created_at"},
                                       default_order="asc")
            return self.list_response(selectors.order_payment_rows(order_id(pk)), params,
                                      render=lambda rows: [selectors.render_payment(row)
                                                           for row in rows])
        data = validated(PaymentCreateIn, request.data)
        payment, order = services.payment_record(
            order_id=order_id(pk), act=data["kind"], amount=data.get("amount"),
            provider=data["provider"],
            reference=data["reference"], succeeded=data["status"] == "succeeded",
            actor=actor_of(request), expected_version=expected_version(request))
        body = {
            "payment": selectors.render_payment(selectors.fields_of(payment,
                                                                    selectors.PAYMENT_FIELDS)),
                "payment_status": order.payment_status}
        return Response(body, status=201, headers={"ETag": f'"{order.version}"'})

    @extend_schema(responses=page_of(OrderEventOut, "OrderEventPage"))
    @action(detail=True, methods=["get"])
    def events(self, request: Request, pk: str) -> Response:
        params = parse_list_params(request.query_params, sort_fields={"created_at": "created_at"},
                                   default_order="asc")
        return self.list_response(selectors.order_events(order_id(pk)), params, render=list)

    @extend_schema(responses=ORDER_OUT, operation_id="orders_by_number")
    @action(detail=False, methods=["get"], url_path=r"by-number/(?P<number>[A-Za-z0-9-]{1,32})")
    def by_number(self, request: Request, number: str) -> Response:
        body = selectors.order_detail(selectors.order_id_by_number(number))
        return self.detail_response(body, version=body["version"])

    @extend_schema(parameters=[OrderListFilters], responses={(200, "text/csv"): OpenApiTypes.STR},
                   operation_id="orders_export_csv",
                   description="Every matching order, newest first, streamed (formula-safe cells); "
                               "include_items=true: one row per order line.")
    @action(detail=False, methods=["get"], url_path=r"export\.csv", url_name="export")
    def export(self, request: Request) -> StreamingHttpResponse:
        params = parse_list_params(request.query_params, filters=OrderListFilters,
                                   sort_fields={"created_at": "created_at"})
        filters = dict(params.filters)
        queryset = selectors.order_filter(**{k: v for k,
                                             v in filters.items() if k != "include_items"})
        if filters.get("include_items"):
            return csv_response("orders.csv", (*selectors.CSV_COLUMNS, *selectors.ITEM_CSV_COLUMNS),
                                selectors.order_export_item_rows(queryset))
        return csv_response("orders.csv", selectors.CSV_COLUMNS,
                            selectors.order_export_rows(queryset))


class CustomerOrderFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False)


class CustomerOrdersView(ApiView):
    """``GET /customers/{id}/orders``: the customer's order summaries, newest first."""

    scope = "orders"

    @extend_schema(parameters=[CustomerOrderFilters], responses=ORDER_PAGE,
                   operation_id="customers_orders_list")
    def get(self, request: Request, customer_id: uuid.UUID) -> Response:
        params = parse_list_params(request.query_params, filters=CustomerOrderFilters,
                                   sort_fields=selectors.SORT_FIELDS)
        return Response(selectors.customer_orders_page(customer_id, params))
