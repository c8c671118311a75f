"""Serializer pieces shared by every domain API: strict bodies, JSON-string text fields, the list
answer's schema and the If-Match header."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers

from stateset.bulk import CellInvalid, check_json_value
from stateset.money import DECIMAL_TEXT, to_decimal


class StrictSerializer(serializers.Serializer[Any]):
    """Rejects fields it does not know (422) instead of silently ignoring them: a client that sends
    ``{"statuss": ...}`` or tries to PATCH a read-only field learns it at once."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


_reusable = threading.local()
_RESULTS = ("_validated_data", "_errors", "_data")


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any, *,
              partial: bool = False) -> dict[str, Any]:
    """The validated body, or a 422 ``validation_error`` naming each bad field.

    Each thread keeps one serializer per class (and ``partial``) and validates every body with it:
    a new serializer deep-copies its declared fields, every nested one's too (``POST /orders``'
    body has about 25: some 7% of the request's CPU, ``loadtest/profile.py``). Validating keeps no
    state on the serializer or its fields but the results, which are dropped after each body, so
    a reused one answers exactly as a new one would."""
    pool: dict[tuple[type[Any], bool], serializers.Serializer[Any]] = _reusable.__dict__.setdefault(
        "serializers", {})
    serializer = pool.pop((serializer_class, partial), None)  # popped: never two bodies at once
    if serializer is None:
        serializer = serializer_class(data=data, partial=partial)
    else:
        serializer.initial_data = data
    try:
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)
    finally:
        for name in _RESULTS:
            serializer.__dict__.pop(name, None)
        del serializer.initial_data
        pool[(serializer_class, partial)] = serializer


class TextField(serializers.CharField):
    """A CharField that takes only JSON strings: ``12`` for a name is a client bug, not "12"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class JsonObjectField(serializers.DictField):
    """A JSON object a client stores (``metadata``, ``attributes``, a location's ``address``) within
    SPEC §3's limits — at most 16 levels deep, 64 KiB encoded, no NUL character — so nothing stored
    can make a later read fail. 422 naming the field otherwise."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value: dict[str, Any] = super().to_internal_value(data)
        try:
            check_json_value(value)
        except CellInvalid as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from None
        return value


class StrictDecimalField(serializers.DecimalField):
    """A DecimalField that reads only a JSON number or a plain decimal string
    (``stateset.money.DECIMAL_TEXT``): ``"1_000"``, ``"1e3"`` and ``" 5 "`` are 422."""

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, str) and not DECIMAL_TEXT.fullmatch(data):
            self.fail("invalid")
        value: Decimal = super().to_internal_value(data)
        return value


class StrictIntegerField(serializers.IntegerField):
    """JSON integers only: ``"2"``, ``2.0`` and ``true`` are client bugs, not 2."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON booleans only: ``"yes"``, ``"true"`` and ``1`` are client bugs, not True (query strings,
    which are text, keep DRF's BooleanField)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


@extend_schema_field({"type": "string", "format": "decimal", "pattern": r"^-?\d+(\.\d+)?$",
                      "example": "59.98"})
class MoneyField(serializers.Field[Any, Any, Any, Any]):
    """An amount: a JSON decimal string (``"59.98"``) or number, finite and not negative. Its digits
    are checked against the currency by the service (``stateset.money.parse_money``), which knows
    it."""

    default_error_messages = {"invalid": "A decimal amount (string or number) is required.",
                              "negative": "Must not be negative."}

    def to_internal_value(self, data: Any) -> Decimal:
        amount = to_decimal(data) if isinstance(data, (str, int, float)) else None
        if amount is None or not amount.is_finite() or len(str(data)) > 32:
            self.fail("invalid")
        if amount < 0:
            self.fail("negative")
        return amount

    def to_representation(self, value: Any) -> str:
        return str(value)


def page_of(item: type[serializers.Serializer[Any]], name: str) -> serializers.Serializer[Any]:
    """The schema of a list answer (``stateset.pagination.Page``) whose items are ``item``: one
    object, also on a list route (where drf-spectacular would document an array of them)."""
    page = inline_serializer(name, fields={
        "items": item(many=True),
        "page": serializers.IntegerField(allow_null=True),
        "limit": serializers.IntegerField(),
        "total": serializers.IntegerField(),
        "total_pages": serializers.IntegerField(),
        "total_is_estimate": serializers.BooleanField(),
        "next_cursor": serializers.CharField(allow_null=True),
    })
    extend_schema_serializer(many=False)(type(page))
    return page


IF_MATCH = OpenApiParameter("If-Match", str, OpenApiParameter.HEADER,
                            description="The ETag of the version you read; 412 if it changed "
                                        "since.")

# SPEC §3 names PATCH and PUT for every update: PUT takes the same fields and rules as PATCH.
PUT_AS_PATCH = "The same fields and rules as PATCH (SPEC §3): only the fields sent change."
