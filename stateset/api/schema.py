"""The OpenAPI schema documents the bodies the API really sends (SPEC §3, STYLE "One source per
answer shape").

Every view declares only its payload (the ``*Out`` serializer of ``data``); this schema class wraps
it in the success envelope that ``stateset.api.rendering.envelope`` builds, and documents every
error status an operation can answer with the error envelope of ``stateset.api.errors``:

- an authenticated operation: 401 (no or bad key), 403 (scope), 429 (rate limited);
- a path with an id: 404;
- a body: 400 (malformed JSON), 404 (a row it names does not exist), 413 (too large), 415 (not
  JSON);
- a body or query parameters: 422 (validation, ``invalid_parameter``, ``invalid_value``);
- a write: 409 (a conflict: a state transition, a unique key, an idempotent request in flight)
  and 422 (``invalid_idempotency_key``, a value the database refuses);
- an ``If-Match`` parameter: 412, and 428 when the operation requires it.

Each of those is one ``components/responses`` entry, referenced by every operation. An operation
that answers another error status names it in its ``extend_schema(responses=...)``
(``{200: StatusOut, 503: ERROR}``); the error envelope replaces whatever schema it gives there.
Every POST also documents its ``Idempotency-Key`` header. ``stateset/tests/system/
test_schemathesis.py`` proves that real answers match all this.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, get_doc
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from stateset.api.views import ApiMixin, ApiView, ApiViewSet

JSON = "application/json"
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    description="Makes this POST safe to retry: a repeat with the same key and body answers what "
                "the first one did (secrets as null); the same key with another body is a 422.")
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER,
    description="An ETag of this resource (\"3\"): while it is still current the answer is 304 "
                "with no body.")
NOT_MODIFIED = {"description": "Not Modified: the If-None-Match ETag is current; no body.",
                "headers": {"ETag": {"schema": {"type": "string"},
                                     "description": "The resource's current version."}}}
ERROR = OpenApiResponse(description="The error envelope.")
"""Declares an error status in ``extend_schema(responses=...)``; the schema class fills its body."""

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BODIES = frozenset({"POST", "PUT", "PATCH"})
_ERRORS = {
    "400": ("MalformedJson", "Malformed JSON."),
    "401": ("Unauthorized", "Missing, invalid, expired or revoked API key."),
    "403": ("Forbidden", "The key lacks the scope."),
    "404": ("NotFound", "No such resource, or a row the body names does not exist."),
    "409": ("Conflict", "Conflict: an illegal state transition, an existing key, insufficient "
                        "stock, an idempotent request still in flight."),
    "412": ("PreconditionFailed", "If-Match does not match the current version."),
    "413": ("PayloadTooLarge", "The body is over the limit."),
    "415": ("UnsupportedMediaType", "The body is not JSON."),
    "422": ("ValidationFailed", "Validation failed: a field, a query parameter or a value the "
                                "database refuses."),
    "428": ("PreconditionRequired", "This call demands If-Match."),
    "429": ("RateLimited", "Rate limited (see Retry-After)."),
    "503": ("ServiceUnavailable", "A required dependency is down."),
}


class MetaOut(serializers.Serializer[Any]):
    request_id = serializers.CharField(help_text="X-Request-ID, accepted or generated, echoed.")
    timestamp = serializers.DateTimeField(help_text="RFC 3339, UTC.")


class ErrorOut(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Stable snake_case code, e.g. insufficient_stock.")
    message = serializers.CharField()
    details = serializers.DictField(help_text="What the code needs: the fields and their errors, "
                                              "the ids in conflict...")


@extend_schema_field({"type": "boolean", "enum": [False]})
class _FalseField(serializers.BooleanField):
    pass


class ErrorEnvelopeOut(serializers.Serializer[Any]):
    success = _FalseField()
    error = ErrorOut()
    meta = MetaOut()


class EnvelopeAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, answering in the envelope (see the module docstring)."""

    def get_description(self) -> str:  # type: ignore[override]  # the base's signature, typed
        # A view without a docstring of its own inherits the base view's, which is about
        # writing views, not about the operation: no description rather than that one.
        description: str = super().get_description()
        inherited = {get_doc(base) for base in (ApiMixin, ApiView, ApiViewSet)}
        return "" if description in inherited else description

    def get_auth(self) -> list[dict[str, Any]]:
        # drf-spectacular adds SECURITY to every operation; an open view (the health probes) has
        # no authenticator and takes no key.
        if not self.view.get_authenticators():
            return []
        auth: list[dict[str, Any]] = super().get_auth()
        return auth

    def get_override_parameters(self) -> list[Any]:
        parameters: list[Any] = list(super().get_override_parameters())
        if self.method == "POST":  # every POST is idempotent on request (ApiMixin)
            parameters.append(IDEMPOTENCY_KEY)
        if self._conditional_read():
            parameters.append(IF_NONE_MATCH)
        return parameters

    def _conditional_read(self) -> bool:
        """A GET of one resource (the path ends in its id, number or SKU): it answers with an
        ``ETag`` and honours ``If-None-Match`` (``ApiMixin.detail_response``)."""
        return (self.method == "GET" and getattr(self.view, "etag_reads", False)
                and self.path.rstrip("/").endswith("}"))

    def _get_response_for_code(self, serializer: Any, status_code: str, media_types: Any = None,
                               direction: Any = "response") -> dict[str, Any]:
        if int(status_code) >= 400:
            described = isinstance(serializer, OpenApiResponse) and serializer is not ERROR \
                and serializer.description
            return (self._error_response(status_code, str(serializer.description)) if described
                    else self._shared_error_response(status_code))
        response: dict[str, Any] = super()._get_response_for_code(  # type: ignore[no-untyped-call]  # untyped base
            serializer, status_code, media_types, direction)
        content = response.get("content", {})
        if JSON in content:
            content[JSON]["schema"] = self._success_envelope(content[JSON].get("schema", {}))
        return response

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(ERROR, code, direction=direction)
        if self._conditional_read() and "200" in responses:
            responses["304"] = NOT_MODIFIED
        return dict(sorted(responses.items()))

    def _error_response(self, status_code: str, description: str) -> dict[str, Any]:
        response: dict[str, Any] = {"description": description,
                                    "content": {JSON: {"schema": self._error_envelope()}}}
        if status_code == "429":
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                   "description": "Seconds to wait."}}
        return response

    def _shared_error_response(self, status_code: str) -> dict[str, Any]:
        """One ``components/responses`` entry per error status, referenced by every operation."""
        name, description = _ERRORS.get(status_code, (f"Error{status_code}", "An error."))
        component = ResolvedComponent(  # type: ignore[no-untyped-call]  # drf-spectacular: untyped
            name=name, type=ResolvedComponent.RESPONSE, object=name,
            schema=self._error_response(status_code, description))
        self.registry.register_on_missing(component)
        ref: dict[str, Any] = component.ref
        return ref

    def _error_codes(self) -> list[str]:
        codes = set()
        if self.get_auth():
            codes |= {"401", "403", "429"}
        if "{" in self.path:
            codes.add("404")
        if self.method in _BODIES:
            codes |= {"400", "404", "413", "415", "422"}
        if self.method in _WRITES:
            codes |= {"409", "422"}
        parameters = self._get_parameters()
        if any(p.get("in") == "query" for p in parameters):
            codes.add("422")
        for parameter in parameters:
            if parameter.get("in") == "header" and parameter.get("name") == "If-Match":
                codes |= {"412", "428"} if parameter.get("required") else {"412"}
        return sorted(codes)

    def _component(self, serializer: type[serializers.Serializer[Any]]) -> dict[str, Any]:
        ref: dict[str, Any] = self.resolve_serializer(serializer(), "response").ref
        return ref

    def _error_envelope(self) -> dict[str, Any]:
        return self._component(ErrorEnvelopeOut)

    def _success_envelope(self, data: dict[str, Any]) -> dict[str, Any]:
        meta = self._component(MetaOut)
        return {"type": "object", "required": ["success", "data", "meta"], "properties": {
            "success": {"type": "boolean", "enum": [True]},
            "data": data,
            "meta": meta,
        }}
