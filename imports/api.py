"""``/api/v1/imports`` (SPEC §4.8). ``POST`` takes the file as the request body (``text/csv`` or
``application/x-ndjson``), streamed to a temporary file under ``[imports] max_bytes`` (the API's
own body limit does not apply to this route), stores it and answers 202; the import runs as a
Celery task. ``GET`` shows progress, counts and the first 1,000 errors."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from typing import Any

from django.conf import settings
from django.utils.http import parse_header_parameters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.parsers import BaseParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from imports import selectors, services
from imports.kinds import KINDS
from imports.models import Import
from stateset.api.auth import HasScope, granted_scopes
from stateset.api.pagination import parse_list_params
from stateset.api.serializers import page_of
from stateset.api.views import ApiViewSet, actor_of, parse_id
from stateset.errors import NotFound, PayloadTooLarge, ValidationFailed
from stateset.keys import scope_allows


class Upload(dict[str, Any]):
    """The parsed body: its size, digest and format (what an Idempotency-Key's body hash covers),
    with the spooled file itself as ``.file``."""

    file: Any


class _UploadParser(BaseParser):
    file_format = "csv"

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Upload:
        _, params = parse_header_parameters(media_type or "")
        charset = params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise exceptions.UnsupportedMediaType(media_type,
                                                  detail="An import file must be UTF-8.")
        limit = settings.IMPORTS_MAX_BYTES
        spool = tempfile.SpooledTemporaryFile(max_size=services.CHUNK_BYTES)  # noqa: SIM115 (handed on)
        digest, size = hashlib.sha256(), 0
        while data := stream.read(services.CHUNK_BYTES):
            size += len(data)
            if size > limit:
                spool.close()
                raise PayloadTooLarge(f"The file exceeds {limit} bytes.",
                                      details={"limit_bytes": limit})
            digest.update(data)
            spool.write(data)
        spool.seek(0)
        upload = Upload(format=self.file_format, bytes=size, sha256=digest.hexdigest())
        upload.file = spool
        return upload


class CsvParser(_UploadParser):
    media_type = "text/csv"
    file_format = "csv"


class NdjsonParser(_UploadParser):
    media_type = "application/x-ndjson"
    file_format = "ndjson"


class ImportScope(HasScope):
    """``POST`` needs ``imports:write`` (and the view checks the kind's write scope); reading the
    imports needs ``imports:read`` or ``imports:write`` (who starts an import may follow it)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS and getattr(request.user, "is_authenticated", False) \
                and scope_allows(granted_scopes(request.user), "imports:write"):
            return True
        return super().has_permission(request, view)


class ImportParams(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Import.Kind.choices)
    mode = serializers.ChoiceField(choices=Import.Mode.values, required=False,
                                   default=Import.Mode.UPSERT)
    dry_run = serializers.BooleanField(required=False, default=False)


class ImportFilters(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Import.Kind.choices, required=False)
    status = serializers.ChoiceField(choices=Import.Status.choices, required=False)
    dry_run = serializers.BooleanField(required=False, allow_null=True, default=None)


class ImportErrorOut(serializers.Serializer):
    row = serializers.IntegerField(allow_null=True,
                                   help_text="1 is the first data row after the header.")
    column = serializers.CharField(allow_null=True, help_text="Null: the row (or file) as a whole.")
    code = serializers.CharField()
    message = serializers.CharField()


class ImportSummaryOut(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Import.Kind.choices)
    mode = serializers.ChoiceField(choices=Import.Mode.values)
    dry_run = serializers.BooleanField()
    format = serializers.ChoiceField(choices=Import.Format.values)
    status = serializers.ChoiceField(choices=Import.Status.choices)
    file_name = serializers.CharField()
    file_bytes = serializers.IntegerField()
    rows_total = serializers.IntegerField(allow_null=True)
    rows_done = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    failed = serializers.IntegerField()
    error_count = serializers.IntegerField()
    created_by = serializers.CharField()
    source_import_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)


class ImportOut(ImportSummaryOut):
    errors = ImportErrorOut(many=True)


ACCEPTED = inline_serializer("ImportAccepted", fields={
    "id": serializers.UUIDField(), "status": serializers.ChoiceField(choices=["queued"])})


def _query(request: Request, serializer: type[serializers.Serializer]) -> dict[str, Any]:
    data = {key: request.query_params.get(key) for key in request.query_params if key != "format"}
    unknown = sorted(set(data) - set(serializer().fields))
    if unknown:
        raise ValidationFailed(f"Unknown query parameter(s): {', '.join(unknown)}.",
                               code="invalid_parameter", details={"unknown": unknown})
    checked = serializer(data=data)
    if not checked.is_valid():
        raise ValidationFailed("Invalid query parameters.", code="invalid_parameter",
                               details=checked.errors)
    return dict(checked.validated_data)


class ImportViewSet(ApiViewSet):
    etag_reads = False  # no version to tag: the detail changes as it is read
    scope = "imports"
    permission_classes = [ImportScope]
    parser_classes = [CsvParser, NdjsonParser]
    lookup_value_regex = "[^/]+"

    @extend_schema(
        parameters=[ImportParams],
        request={"text/csv": OpenApiTypes.BINARY, "application/x-ndjson": OpenApiTypes.BINARY},
        responses={202: ACCEPTED},
        description="Upload a file (UTF-8 CSV with a header row, or NDJSON) of up to [imports] "
                    "max_bytes. "
                    "Needs imports:write and the write scope of the kind (catalog, customers, "
                    "inventory).",
    )
    def create(self, request: Request) -> Response:
        params = _query(request, ImportParams)
        kind = KINDS[params["kind"]]
        if not scope_allows(granted_scopes(request.user), kind.scope):
            raise exceptions.PermissionDenied(f"This key lacks the scope {kind.scope}.",
                                              code="insufficient_scope")
        upload = request.data
        if not isinstance(upload, Upload) or not upload["bytes"]:
            raise ValidationFailed("Send the file as the request body.", code="empty_file")
        with upload.file:
            record = services.import_create(kind=kind.name, stream=upload.file,
                                            file_format=upload["format"],
                                            mode=params["mode"], dry_run=params["dry_run"],
                                            actor=actor_of(request))
        return Response({"id": str(record.id), "status": Import.Status.QUEUED}, status=202,
                        headers={"Location": f"/api/v1/imports/{record.id}"})

    @extend_schema(parameters=[ImportFilters], responses=page_of(ImportSummaryOut, "ImportPage"))
    def list(self, request: Request) -> Response:
        params = parse_list_params(request.query_params, filters=ImportFilters,
                                   sort_fields={"created_at": "created_at"})
        return self.list_response(selectors.import_list(**params.filters), params,
                                  render=selectors.render_imports)

    @extend_schema(responses=ImportOut)
    def retrieve(self, request: Request, pk: str) -> Response:
        body = selectors.import_detail(_import_id(pk))
        if body is None:
            raise NotFound("No such import.", code="import_not_found")
        return Response(body)


def _import_id(value: str) -> uuid.UUID:
    return parse_id(value, code="import_not_found", message="No such import.")
