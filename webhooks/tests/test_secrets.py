"""SPEC §4.7/§10: a webhook secret is shown once — never stored in an idempotency record, never
logged, never on an admin page; a replay answers the same status and data with the secret null."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from stateset import services as platform_services
from stateset.models import IdempotencyRecord
from stateset.testing import data_of

pytestmark = pytest.mark.django_db
BODY = {"url": "https://hooks.example.com/in", "events": ["*"]}


def test_a_replayed_create_answers_the_same_data_with_the_secret_null(api, caplog):
    caplog.set_level(logging.DEBUG)
    first = api.post("/api/v1/webhooks", BODY, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    created = data_of(first, 201)
    secret = created["secret"]
    assert secret.startswith("whsec_")

    record = IdempotencyRecord.objects.get(key="hook-1")
    stored = f"{record.response_body} {record.response_headers}"
    assert secret not in stored and "whsec_" not in stored
    assert record.response_body["secret"] is None

    again = api.post("/api/v1/webhooks", BODY, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    assert again["Idempotent-Replayed"] == "true"
    assert again.status_code == 201 and again["ETag"] == first["ETag"]
    assert data_of(again, 201) == {**created, "secret": None}

    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert secret not in logged


def test_undeclared_secrets_are_redacted_too():
    body = {"id": 1, "nested": [{"token": "sk_" + "a" * 43}, {"other": "whsec_" + "b" * 43}],
            "prefix": "sk_abc1234", "name": "kept"}
    assert platform_services.redact_secrets(body) == {
        "id": 1, "nested": [{"token": None}, {"other": None}], "prefix": "sk_abc1234",
        "name": "kept"}
    assert body["nested"][0]["token"].startswith("sk_")  # the live answer is not touched
    assert platform_services.redact_secrets({"key": {"value": "x"}},
                                            ["key.value"]) == {"key": {"value": None}}


def test_the_idempotency_admin_never_shows_a_stored_answer(admin_client):
    claim = platform_services.idempotency_claim(owner="key:x", key="old", method="POST",
                                                path="/api/v1/webhooks", request_hash="0" * 64)
    # An answer stored as it was before redaction existed.
    IdempotencyRecord.objects.filter(id=claim.record_id).update(
        status="completed", response_status=201, response_body={"secret": "whsec_" + "c" * 43})
    page = admin_client.get(reverse("admin:stateset_idempotencyrecord_change",
                                    args=[claim.record_id]))
    assert page.status_code == 200
    assert b"whsec_" not in page.content
    listing = admin_client.get(reverse("admin:stateset_idempotencyrecord_changelist"))
    assert listing.status_code == 200 and b"whsec_" not in listing.content


def test_the_migration_redacts_answers_stored_before(db):
    import importlib

    from django.db import connection

    migration = importlib.import_module("stateset.migrations.0003_redact_stored_secrets")
    claim = platform_services.idempotency_claim(owner="key:y", key="older", method="POST",
                                                path="/api/v1/webhooks", request_hash="0" * 64)
    IdempotencyRecord.objects.filter(id=claim.record_id).update(
        status="completed", response_status=201,
        response_body={"id": "1", "secret": "whsec_" + "d" * 43})
    with connection.cursor() as cursor:
        cursor.execute(migration.REDACT)
    assert IdempotencyRecord.objects.get(id=claim.record_id).response_body == {"id": "1",
                                                                               "secret": None}
