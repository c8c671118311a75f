"""``/api/v1/api-keys`` (SPEC §3): list, create, show, revoke and rotate API keys; scope
``keys:manage``. A key grants (and manages) only what it holds: ``stateset.services`` decides, with
the caller as the grantor. A secret appears only in the answer that made it (``secret_fields``:
an idempotent replay answers it as null)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from stateset import selectors, services
from stateset.api.auth import granted_scopes
from stateset.api.pagination import parse_list_params
from stateset.api.serializers import (
    StrictIntegerField,
    StrictSerializer,
    TextField,
    page_of,
    validated,
)
from stateset.api.views import ApiViewSet, actor_of, parse_id
from stateset.errors import NotFound
from stateset.keys import Grantor, all_scopes


class ApiKeyIn(StrictSerializer):
    name = TextField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=all_scopes()),
                                   allow_empty=False, max_length=64,
                                   help_text="Only scopes the calling key holds; orders:set_prices "
                                             "only "
                                             "by a key holding it by name.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                           help_text="Defaults to the calling key's own expiry, if "
                                                     "any.")
    rate_limit = TextField(max_length=32, required=False, allow_blank=True, default="",
                           help_text='Such as "6000/min"; empty = the calling key\'s limit or '
                                     'the default.')

    def validate_expires_at(self, value: datetime | None) -> datetime | None:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Give a time in the future.")
        return value


class ApiKeyRotateIn(StrictSerializer):
    grace_seconds = StrictIntegerField(min_value=0, max_value=services.MAX_GRACE_SECONDS,
                                       required=False,
                                       default=0,
                                       help_text="How long the replaced secret keeps working.")


class ApiKeyFilters(serializers.Serializer[Any]):
    revoked = serializers.BooleanField(required=False, allow_null=True, default=None)


class ApiKeyOut(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The first characters of the secret, to recognise it.")
    scopes = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField(allow_null=True)
    rate_limit = serializers.CharField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeySecretOut(ApiKeyOut):
    key = serializers.CharField(allow_null=True,
                                help_text="The secret (sk_...), shown only in this answer; null in "
                                          "an "
                                          "idempotent replay.")


def api_key_id(value: str) -> uuid.UUID:
    return parse_id(value, code="api_key_not_found", message="No API key with this id.")


def grantor_of(request: Request) -> Grantor:
    """The caller as the grantor of a key: its scopes, and its own expiry and rate limit."""
    user = request.user
    return Grantor(scopes=tuple(granted_scopes(user)), expires_at=getattr(user, "expires_at", None),
                   rate_limit=getattr(user, "rate_limit", "") or "")


class ApiKeyViewSet(ApiViewSet):
    etag_reads = False  # no ETag: a key's detail is read fresh each time
    scope = "keys"
    lookup_value_regex = "[^/]+"
    action_scopes = {name: "keys:manage"
                     for name in ("list", "create", "retrieve", "destroy", "rotate")}
    # Fields of an answer that carry a secret: never stored in an idempotency record.
    # shown once: a replay answers it as null
    secret_fields = {"create": ("key",), "rotate": ("key",)}

    @extend_schema(parameters=[ApiKeyFilters], responses=page_of(ApiKeyOut, "ApiKeyPage"))
    def list(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=ApiKeyFilters)
        return self.list_response(selectors.api_key_list(filters=params.filters), params,
                                  render=selectors.render_api_keys)

    @extend_schema(request=ApiKeyIn, responses={201: ApiKeySecretOut})
    def create(self, request: Request) -> Response:
        body = validated(ApiKeyIn, request.data)
        api_key, raw = services.api_key_create(**body, grantor=grantor_of(request),
                                               created_by=actor_of(request))
        return Response({**selectors.api_key_data(api_key), "key": raw}, status=201)

    @extend_schema(responses=ApiKeyOut)
    def retrieve(self, request: Request, pk: str) -> Response:
        data = selectors.api_key_detail(api_key_id=api_key_id(pk))
        if data is None:
            raise NotFound("No API key with this id.", code="api_key_not_found")
        return Response(data)

    @extend_schema(responses={204: None}, description="Revoke the key: it stops working at once.")
    def destroy(self, request: Request, pk: str) -> Response:
        services.api_key_revoke(api_key_id=api_key_id(pk), grantor=grantor_of(request))
        return Response(status=204)

    @extend_schema(request=ApiKeyRotateIn, responses=ApiKeySecretOut,
                   description="A new secret, shown once; the replaced one works for grace_seconds "
                               "more.")
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str) -> Response:
        target = api_key_id(pk)
        body = validated(ApiKeyRotateIn, request.data or {})
        api_key, raw = services.api_key_rotate(api_key_id=target, grantor=grantor_of(request),
                                               **body)
        return Response({**selectors.api_key_data(api_key), "key": raw})
