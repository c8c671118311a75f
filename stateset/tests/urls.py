"""The project's URLs plus tiny endpoints that exercise the API platform on its own."""

import threading
import uuid

from django.db import transaction
from django.urls import path
from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response

from stateset import services
from stateset.api.views import ApiView
from stateset.errors import Conflict
from stateset.models import ApiKey, IdempotencyRecord
from stateset.urls import handler400, handler403, handler404, handler500  # noqa: F401
from stateset.urls import urlpatterns as project_urlpatterns

gate = {"event": None}


class _KeyIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    # A body field named like Serializer.fail: the metaclass moves declared fields off the class,
    # so the method is not shadowed at run time; mypy sees the class attribute.
    fail = serializers.ChoiceField(  # type: ignore[assignment]  # see above
        choices=["none", "conflict", "crash"], default="none")


class CreateThing(ApiView):
    """POST creates one ApiKey row per call (a visible side effect to count)."""

    scope = "catalog"

    def post(self, request):
        data = _KeyIn(data=request.data)
        data.is_valid(raise_exception=True)
        event = gate["event"]
        if isinstance(event, threading.Event):
            event.wait(5)
        if data.validated_data["fail"] == "crash":
            raise RuntimeError("boom")
        if data.validated_data["fail"] == "conflict":
            raise Conflict("said no", code="test_conflict")
        key, _ = services.api_key_create(name=data.validated_data["name"], scopes=["catalog:read"])
        return Response({"id": str(key.id), "name": key.name}, status=201)


class Boom(ApiView):
    scope = None
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise RuntimeError("an unexpected bug")


class RawWrite(ApiView):
    """POST writes one row with a value from the body and no validation at all, so what the
    database refuses reaches the error mapping (``{"column": ..., "value": ...}``)."""

    scope = "catalog"

    def post(self, request):
        column, value = request.data["column"], request.data["value"]
        now = timezone.now()
        with transaction.atomic():  # as a service writes: a refusal rolls back its own block
            self._write(column, value, now)
        return Response({}, status=201)

    def _write(self, column, value, now):
        if column in ("name", "rate_limit"):
            ApiKey.objects.create(**{"name": "raw", "prefix": "sk_raw",
                                     "key_hash": uuid.uuid4().hex, column: value})
        else:
            IdempotencyRecord.objects.create(**{"owner": "raw", "key": uuid.uuid4().hex,
                                                "method": "POST",
                                                "path": "/", "request_hash": "0",
                                                "locked_until": now,
                                                "expires_at": now, column: value})


urlpatterns = [
    path("api/v1/_test/things", CreateThing.as_view()),
    path("api/v1/_test/raw", RawWrite.as_view()),
    path("api/v1/_test/boom", Boom.as_view()),
    *project_urlpatterns,
]
