"""``/api/v1/products`` (SPEC §4.1). Thin: validate, call one service or selector, answer."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.currencies import ISO_4217
from catalog.models import sku_validator
from stateset.api.pagination import parse_list_params
from stateset.api.serializers import (
    IF_MATCH,
    PUT_AS_PATCH,
    JsonObjectField,
    StrictBooleanField,
    StrictDecimalField,
    StrictSerializer,
    TextField,
    page_of,
    validated,
)
from stateset.api.views import ApiViewSet, expected_version
from stateset.api.views import parse_id as platform_parse_id
from stateset.csvio import csv_response
from stateset.errors import NotFound, ValidationFailed

MAX_PRICE_DIGITS = 13


def _price_field(**kwargs: Any) -> serializers.DecimalField:
    """Up to three decimals (KWD); the service allows only the currency's own digits."""
    return StrictDecimalField(max_digits=MAX_PRICE_DIGITS, decimal_places=3,
                              min_value=Decimal("0"), **kwargs)


class ProductIn(StrictSerializer):
    sku = TextField(max_length=64, validators=[sku_validator])
    name = TextField(max_length=255)
    description = TextField(max_length=20_000, allow_blank=True, required=False, default="")
    price = _price_field()
    currency = TextField(min_length=3, max_length=3, required=False, default="USD")
    is_active = StrictBooleanField(required=False, default=True)
    allow_backorder = StrictBooleanField(
        required=False, default=False,
        help_text="Order lines may take more than the sellable stock; the rest waits as "
                  "quantity_backordered (SPEC §4.4.3).")
    attributes = JsonObjectField(required=False, default=dict)

    def validate_currency(self, value: str) -> str:
        value = value.upper()
        if value not in ISO_4217:
            raise serializers.ValidationError("Use an ISO 4217 currency code such as USD.")
        return value


class _PriceRange(serializers.Serializer):
    is_active = serializers.BooleanField(required=False)
    min_price = _price_field(required=False)
    max_price = _price_field(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"max_price": ["Must be at least min_price."]})
        return attrs


class ProductFilters(_PriceRange):
    sku = TextField(max_length=64, required=False)


class SearchParams(_PriceRange, StrictSerializer):
    q = TextField(max_length=200, allow_blank=True,
                  help_text="Words to find; the last one may be a prefix. An exact SKU ranks "
                            "first.")
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False, default=20)
    offset = serializers.IntegerField(min_value=0, max_value=10_000, required=False, default=0)


SORT_FIELDS = {"created_at": "created_at", "name": "name", "price": "price", "sku": "sku"}


# --- documentation of the answers (the shapes selectors.render_product produces) ------------------


class ProductOut(serializers.Serializer):
    id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    price = serializers.DecimalField(max_digits=MAX_PRICE_DIGITS, decimal_places=2)
    currency = serializers.CharField()
    is_active = serializers.BooleanField()
    allow_backorder = serializers.BooleanField()
    attributes = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    version = serializers.IntegerField()


class ProductDeactivatedOut(ProductOut):
    deactivated = serializers.BooleanField()


class ListQuery(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    per_page = serializers.IntegerField(min_value=1, max_value=100, required=False,
                                        help_text="Alias of limit.")
    cursor = serializers.CharField(required=False, help_text="next_cursor of the previous page.")
    sort_by = serializers.ChoiceField(choices=sorted(SORT_FIELDS), required=False)
    sort_order = serializers.ChoiceField(choices=["asc", "desc"], required=False)


SEARCH_OUT = inline_serializer("ProductSearchResult", fields={
    "items": ProductOut(many=True),
    "query": serializers.CharField(),
    "limit": serializers.IntegerField(),
    "offset": serializers.IntegerField(),
    "has_more": serializers.BooleanField(),
    "next_offset": serializers.IntegerField(allow_null=True),
})


def parse_id(value: str) -> uuid.UUID:
    return platform_parse_id(value, code="product_not_found", message="No product with this id.")


class ProductViewSet(ApiViewSet):
    scope = "catalog"
    # Any path segment reaches the view, which answers a malformed id with the same 404 envelope.
    lookup_value_regex = "[^/]+"

    @extend_schema(parameters=[ProductFilters, ListQuery],
                   responses=page_of(ProductOut, "ProductPage"))
    def list(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=ProductFilters,
                                   sort_fields=SORT_FIELDS, default_sort="created_at")
        return self.list_response(selectors.product_list(filters=params.filters), params,
                                  render=selectors.render_products)

    @extend_schema(request=ProductIn, responses={201: ProductOut})
    def create(self, request: Request) -> Response:
        body = validated(ProductIn, request.data)
        product = services.product_create(**body)
        return self.detail_response(selectors.product_data(product), version=product.version,
                                    status=201)

    @extend_schema(responses=ProductOut)
    def retrieve(self, request: Request, pk: str) -> Response:
        data = selectors.product_detail(product_id=parse_id(pk))
        if data is None:
            raise NotFound("No product with this id.", code="product_not_found")
        return self.detail_response(data, version=data["version"])

    @extend_schema(request=ProductIn(partial=True), responses=ProductOut, parameters=[IF_MATCH])
    def partial_update(self, request: Request, pk: str) -> Response:
        product_id = parse_id(pk)
        version = expected_version(request)
        body = validated(ProductIn, request.data, partial=True)
        product = services.product_update(product_id=product_id, fields=body,
                                          expected_version=version)
        return self.detail_response(selectors.product_data(product), version=product.version)

    @extend_schema(request=ProductIn(partial=True), responses=ProductOut, parameters=[IF_MATCH],
                   description=PUT_AS_PATCH)
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(responses={204: None, 200: ProductDeactivatedOut},
                   description="Deletes the product (204), or deactivates it (200, deactivated: "
                               "true) when orders or stock still reference it.")
    def destroy(self, request: Request, pk: str) -> Response:
        result = services.product_delete(product_id=parse_id(pk))
        if result.deleted:
            return Response(status=204)
        assert result.product is not None
        data = {**selectors.product_data(result.product), "deactivated": True}
        return self.detail_response(data, version=result.product.version)

    @extend_schema(parameters=[SearchParams], responses=SEARCH_OUT)
    @action(detail=False, methods=["get"], url_path="search")
    def search(self, request: Request) -> Response:
        query = {key: request.query_params.get(key) for key in request.query_params}
        query.pop("format", None)  # DRF's renderer override, not a search parameter
        try:
            values = validated(SearchParams, query)
        except serializers.ValidationError as exc:
            detail = exc.detail  # a serializer's errors: a dict by field
            raise ValidationFailed("Invalid query parameters.", code="invalid_parameter",
                                   details=detail if isinstance(detail, dict)
                                   else {"non_field_errors": detail}) from None
        limit, offset = values["limit"], values["offset"]
        items, has_more = selectors.product_search(
            q=values["q"], limit=limit, offset=offset, is_active=values.get("is_active"),
            min_price=values.get("min_price"), max_price=values.get("max_price"),
        )
        return Response({"items": items, "query": values["q"], "limit": limit, "offset": offset,
                         "has_more": has_more, "next_offset": offset + limit if has_more else None})

    @extend_schema(parameters=[ProductFilters], responses={(200, "text/csv"): OpenApiTypes.STR},
                   operation_id="products_export_csv",
                   description="Every matching product by SKU, streamed; re-importable (POST "
                               "/imports?kind=products).")
    @action(detail=False, methods=["get"], url_path=r"export\.csv", url_name="export")
    def export(self, request: Request) -> StreamingHttpResponse:
        params = parse_list_params(request.query_params, filters=ProductFilters,
                                   sort_fields={"sku": "sku"}, default_sort="sku")
        rows = selectors.product_export_rows(selectors.product_list(filters=params.filters))
        return csv_response("products.csv", selectors.EXPORT_COLUMNS, rows)

    @extend_schema(responses=ProductOut)
    @action(detail=False, methods=["get"], url_path=r"by-sku/(?P<sku>[^/]+)")
    def by_sku(self, request: Request, sku: str) -> Response:
        data = selectors.product_by_sku(sku=sku) if len(sku) <= 64 and "\x00" not in sku else None
        if data is None:
            raise NotFound("No product with this SKU.", code="product_not_found")
        return self.detail_response(data, version=data["version"])
