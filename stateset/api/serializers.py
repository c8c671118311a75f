"""Serializer pieces shared by every domain API: strict bodies, JSON-string text fields, the list
answer's schema and the If-Match header."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers


class StrictSerializer(serializers.Serializer[Any]):
    """Rejects fields it does not know (422) instead of silently ignoring them: a client that sends
    ``{"statuss": ...}`` or tries to PATCH a read-only field learns it at once."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any,
              **kwargs: Any) -> dict[str, Any]:
    """The validated body, or a 422 ``validation_error`` naming each bad field."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class TextField(serializers.CharField):
    """A CharField that takes only JSON strings: ``12`` for a name is a client bug, not "12"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def page_of(item: type[serializers.Serializer[Any]], name: str) -> serializers.Serializer[Any]:
    """The schema of a list answer (``stateset.api.pagination.Page``) whose items are ``item``."""
    return inline_serializer(name, fields={
        "items": item(many=True),
        "page": serializers.IntegerField(allow_null=True),
        "limit": serializers.IntegerField(),
        "total": serializers.IntegerField(),
        "total_pages": serializers.IntegerField(),
        "total_is_estimate": serializers.BooleanField(),
        "next_cursor": serializers.CharField(allow_null=True),
    })


IF_MATCH = OpenApiParameter("If-Match", str, OpenApiParameter.HEADER,
                            description="The ETag of the version you read; 412 if it changed "
                                        "since.")
