"""``GET /api/v1/audit?object_type=<app.model>&object_id=<id>`` (SPEC §5): an object's trail,
newest first, for a caller with the read scope of the object's resource (``catalog:read`` for a
product; ``keys:manage`` for an API key, ``webhooks:manage`` for a webhook endpoint)."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from audit import registry, selectors
from stateset.api.auth import granted_scopes
from stateset.api.pagination import parse_list_params
from stateset.api.serializers import page_of
from stateset.api.views import ApiView
from stateset.errors import DomainError, ValidationFailed
from stateset.keys import scope_allows


class UnknownObjectType(DomainError):
    status, code = 422, "unknown_object_type"  # a query parameter's value: SPEC §3's 422


class AuditFilters(serializers.Serializer[Any]):
    object_type = serializers.CharField(help_text="<app>.<model>, such as catalog.product.")
    object_id = serializers.CharField()


class AuditEventOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    action = serializers.ChoiceField(choices=["insert", "update", "delete"])
    at = serializers.DateTimeField()
    actor = serializers.CharField(
        help_text='"api-key:<name>", "admin:<username>", "task:<name>", "command:<name>" or '
                  '"system" (a write outside any of these).')
    context = serializers.DictField(  # type: ignore[assignment]  # a field, not Field.context
        help_text="request_id, method, path, api_key, user, task_id.")
    changes = serializers.DictField(
        child=serializers.DictField(), help_text='{"price": {"old": "10.00", "new": "12.50"}} '
                                                 "on an update; empty on insert and delete.")
    snapshot = serializers.DictField(help_text="The audited fields after the change (before it, "
                                               "for a delete). Never secrets or key hashes.")


def _audited(request: Request) -> registry.Audited:
    label = (request.query_params.get("object_type") or "").lower()
    entry = registry.audited().get(label)
    if entry is None:
        raise UnknownObjectType(
            "object_type must name an audited model.",
            details={"object_type": [f"One of: {', '.join(sorted(registry.audited()))}."]})
    return entry


class HasAuditScope(BasePermission):
    """Authenticated first (401), then a known object type (422), then its read scope (403)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.user is None or not getattr(request.user, "is_authenticated", False):
            raise exceptions.NotAuthenticated("Authentication required: send X-API-Key.")
        if request.method not in ("GET", "HEAD"):
            return True  # the view serves none: 405, as on every route
        required = _audited(request).read_scope
        if not scope_allows(granted_scopes(request.user), required):
            raise exceptions.PermissionDenied(f"This key lacks the scope {required}.",
                                              code="insufficient_scope")
        return True


class AuditView(ApiView):
    permission_classes = [HasAuditScope]

    @extend_schema(
        operation_id="audit_list",
        parameters=[OpenApiParameter("object_type", str, required=True,
                                     description="<app>.<model>: " + ", ".join(
                                         registry.audited())),
                    OpenApiParameter("object_id", str, required=True)],
        responses={200: page_of(AuditEventOut, "AuditEventPage")})
    def get(self, request: Request) -> Response:
        entry = _audited(request)
        params = parse_list_params(request.query_params, filters=AuditFilters,
                                   sort_fields={"id": "pgh_id"}, default_sort="id")
        raw_id = request.query_params.get("object_id") or ""
        if entry.model._meta.pk.get_internal_type() == "UUIDField":
            try:
                object_id: Any = uuid.UUID(raw_id)
            except ValueError:
                raise ValidationFailed("object_id is not an id of this object type.",
                                       code="invalid_parameter",
                                       details={"object_id": ["Must be a UUID."]}) from None
        else:
            object_id = raw_id
        return self.list_response(selectors.events_of(entry, object_id), params,
                                  render=lambda rows: selectors.render_events(entry, rows))
