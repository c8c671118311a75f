"""``/api/v1/customers`` and their addresses (SPEC §4.2). Thin: validate, call one service or
selector, answer. ``GET /customers/{id}/orders`` belongs to the orders app."""

from __future__ import annotations

import uuid

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from customers import selectors, services
from customers.countries import ISO_3166_ALPHA2
from customers.models import Address, phone_validator
from stateset.api.pagination import parse_list_params
from stateset.api.serializers import (
    IF_MATCH,
    PUT_AS_PATCH,
    JsonObjectField,
    StrictBooleanField,
    StrictSerializer,
    TextField,
    page_of,
    validated,
)
from stateset.api.views import ApiViewSet, expected_version
from stateset.api.views import parse_id as platform_parse_id
from stateset.csvio import csv_response
from stateset.errors import NotFound

# The API's address kinds, as plain values (one enum in the schema: ENUM_NAME_OVERRIDES).
ADDRESS_KINDS = Address.Kind.values


def _text(max_length: int) -> serializers.CharField:
    return TextField(max_length=max_length, allow_blank=True, required=False, default="")


class CustomerIn(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    first_name = _text(100)
    last_name = _text(100)
    phone = TextField(max_length=32, allow_blank=True, required=False, default="",
                                  validators=[phone_validator])
    metadata = JsonObjectField(required=False, default=dict)


class CustomerAddressIn(StrictSerializer):
    kind = serializers.ChoiceField(choices=ADDRESS_KINDS)
    name = _text(200)
    line1 = TextField(max_length=200)
    line2 = _text(200)
    city = TextField(max_length=100)
    region = _text(100)
    postal_code = _text(20)
    country = TextField(min_length=2, max_length=2)
    phone = TextField(max_length=32, allow_blank=True, required=False, default="",
                                  validators=[phone_validator])
    is_default = StrictBooleanField(required=False, allow_null=True, default=None)

    def validate_country(self, value: str) -> str:
        value = value.upper()
        if value not in ISO_3166_ALPHA2:
            raise serializers.ValidationError("Use an ISO 3166-1 alpha-2 country code such as US.")
        return value


class AddressUpdateIn(CustomerAddressIn):
    """PATCH/PUT of an address: any field of the address (partial); ``is_default`` true makes it the
    default of its kind, false leaves the kind without one."""

    is_default = StrictBooleanField(required=False)


class CustomerFilters(serializers.Serializer):
    email = TextField(max_length=254, required=False)
    search = TextField(max_length=100, required=False)


class AddressFilters(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Address.Kind.values, required=False)
    is_default = serializers.BooleanField(required=False)


CUSTOMER_SORT = {"created_at": "created_at", "email": "email"}


# --- documentation of the answers (the shapes selectors.render_* produce) -------------------------


class CustomerListItemOut(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    phone = serializers.CharField()
    metadata = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    version = serializers.IntegerField()


class CustomerAddressOut(serializers.Serializer):
    id = serializers.UUIDField()
    customer_id = serializers.UUIDField()
    # A plain string here: one "kind" enum (in CustomerAddressIn) keeps the schema's enum names
    # free of collisions with other apps' "kind" fields.
    kind = serializers.CharField(help_text="shipping or billing")
    name = serializers.CharField()
    line1 = serializers.CharField()
    line2 = serializers.CharField()
    city = serializers.CharField()
    region = serializers.CharField()
    postal_code = serializers.CharField()
    country = serializers.CharField()
    phone = serializers.CharField()
    is_default = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    version = serializers.IntegerField(
        help_text="The address's ETag: If-Match on PATCH/PUT/DELETE.")


class CustomerOut(CustomerListItemOut):
    addresses = CustomerAddressOut(many=True)


class CustomerListQuery(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    per_page = serializers.IntegerField(min_value=1, max_value=100, required=False)
    cursor = serializers.CharField(required=False)
    sort_by = serializers.ChoiceField(choices=sorted(CUSTOMER_SORT), required=False)
    sort_order = serializers.ChoiceField(choices=["asc", "desc"], required=False)


class AddressListQuery(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    per_page = serializers.IntegerField(min_value=1, max_value=100, required=False)
    cursor = serializers.CharField(required=False)
    sort_by = serializers.ChoiceField(choices=["created_at"], required=False)
    sort_order = serializers.ChoiceField(choices=["asc", "desc"], required=False)


# Inline enums (not the AddressFilters serializer): a "kind" enum component would collide with
# other apps' "kind" filters in the schema.
ADDRESS_KIND = OpenApiParameter("kind", str, enum=Address.Kind.values, required=False)
ADDRESS_IS_DEFAULT = OpenApiParameter("is_default", bool, required=False)


def parse_id(value: str) -> uuid.UUID:
    return platform_parse_id(value, code="customer_not_found", message="No customer with this id.")


def parse_address_id(value: str) -> uuid.UUID:
    return platform_parse_id(value, code="address_not_found",
                             message="This customer has no address with this id.")


class CustomerViewSet(ApiViewSet):
    scope = "customers"
    lookup_value_regex = "[^/]+"

    @extend_schema(parameters=[CustomerFilters, CustomerListQuery],
                   responses=page_of(CustomerListItemOut, "CustomerPage"))
    def list(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=CustomerFilters,
                                   sort_fields=CUSTOMER_SORT, default_sort="created_at")
        return self.list_response(selectors.customer_list(filters=params.filters), params,
                                  render=selectors.render_customers)

    @extend_schema(parameters=[CustomerFilters], responses={(200, "text/csv"): OpenApiTypes.STR},
                   operation_id="customers_export_csv",
                   description="Every matching customer by email with the default addresses, "
                               "streamed; "
                               "re-importable (POST /imports?kind=customers).")
    @action(detail=False, methods=["get"], url_path=r"export\.csv", url_name="export")
    def export(self, request: Request) -> StreamingHttpResponse:
        params = parse_list_params(request.query_params, filters=CustomerFilters,
                                   sort_fields={"email": "email"}, default_sort="email")
        rows = selectors.customer_export_rows(selectors.customer_list(filters=params.filters))
        return csv_response("customers.csv", selectors.EXPORT_COLUMNS, rows)

    @extend_schema(request=CustomerIn, responses={201: CustomerOut})
    def create(self, request: Request) -> Response:
        body = validated(CustomerIn, request.data)
        customer = services.customer_create(**body)
        data = {**selectors.customer_data(customer), "addresses": []}
        return self.detail_response(data, version=customer.version, status=201)

    @extend_schema(responses=CustomerOut)
    def retrieve(self, request: Request, pk: str) -> Response:
        data = selectors.customer_detail(customer_id=parse_id(pk))
        if data is None:
            raise NotFound("No customer with this id.", code="customer_not_found")
        return self.detail_response(data, version=data["version"])

    @extend_schema(request=CustomerIn(partial=True), responses=CustomerOut, parameters=[IF_MATCH])
    def partial_update(self, request: Request, pk: str) -> Response:
        customer_id = parse_id(pk)
        version = expected_version(request)
        body = validated(CustomerIn, request.data, partial=True)
        services.customer_update(customer_id=customer_id, fields=body,
                                 expected_version=version)
        data = selectors.customer_detail(customer_id=customer_id, fresh=True)
        assert data is not None
        return self.detail_response(data, version=data["version"])

    @extend_schema(request=CustomerIn(partial=True), responses=CustomerOut, parameters=[IF_MATCH],
                   description=PUT_AS_PATCH)
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(methods=["GET"], parameters=[ADDRESS_KIND, ADDRESS_IS_DEFAULT, AddressListQuery],
                   responses=page_of(CustomerAddressOut, "AddressPage"))
    @extend_schema(methods=["POST"], request=CustomerAddressIn, responses={201: CustomerAddressOut},
                   description="A new default address un-defaults the previous default of its "
                               "kind; "
                               "the first address of a kind is the default unless is_default is "
                               "false.")
    @action(detail=True, methods=["get", "post"], url_path="addresses")
    def addresses(self, request: Request, pk: str) -> Response:
        customer_id = parse_id(pk)
        if request.method == "POST":
            body = validated(CustomerAddressIn, request.data)
            address = services.address_create(customer_id=customer_id, **body)
            return Response(selectors.address_data(address), status=201)
        params = parse_list_params(request.query_params, filters=AddressFilters,
                                   sort_fields={"created_at": "created_at"},
                                   default_sort="created_at", default_order="asc")
        if not selectors.customer_exists(customer_id=customer_id):
            raise NotFound("No customer with this id.", code="customer_not_found")
        return self.list_response(selectors.address_list(customer_id=customer_id,
                                                         filters=params.filters),
                                  params, render=selectors.render_addresses)

    @extend_schema(methods=["GET"], responses=CustomerAddressOut,
                   operation_id="customers_address_retrieve")
    @extend_schema(methods=["PATCH"], request=AddressUpdateIn(partial=True),
                   responses=CustomerAddressOut,
                   parameters=[IF_MATCH], operation_id="customers_address_partial_update",
                   description="Only the fields sent change. is_default true un-defaults the "
                               "customer's "
                               "other default of the kind; false leaves the kind without one.")
    @extend_schema(methods=["PUT"], request=AddressUpdateIn(partial=True),
                   responses=CustomerAddressOut,
                   parameters=[IF_MATCH], operation_id="customers_address_update",
                   description="Only the fields sent change (PUT as PATCH). is_default true "
                               "un-defaults "
                               "the customer's other default of the kind; false leaves the kind "
                               "without one.")
    @extend_schema(methods=["DELETE"], responses={204: None}, parameters=[IF_MATCH],
                   operation_id="customers_address_destroy",
                   description="Deleting the default address leaves its kind without a default.")
    @action(detail=True, methods=["get", "patch", "put", "delete"],
            url_path=r"addresses/(?P<address_id>[^/]+)")
    def address(self, request: Request, pk: str, address_id: str) -> Response:
        customer_id, target = parse_id(pk), parse_address_id(address_id)
        if request.method == "GET":
            data = selectors.address_detail(customer_id=customer_id, address_id=target)
            if data is None:
                if not selectors.customer_exists(customer_id=customer_id):
                    raise NotFound("No customer with this id.", code="customer_not_found")
                raise NotFound("This customer has no address with this id.",
                               code="address_not_found")
            return self.detail_response(data, version=data["version"])
        version = expected_version(request)
        if request.method == "DELETE":
            services.address_delete(address_id=target, customer_id=customer_id,
                                    expected_version=version)
            return Response(status=204)
        body = validated(AddressUpdateIn, request.data, partial=True)
        address = services.address_update(address_id=target, customer_id=customer_id, fields=body,
                                          expected_version=version)
        return self.detail_response(selectors.address_data(address), version=address.version)
