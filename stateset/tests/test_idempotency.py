"""Idempotency-Key (SPEC §3): replay the first answer, perform the action once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from stateset.models import ApiKey, IdempotencyRecord
from stateset.tests import urls as test_urls

pytestmark = pytest.mark.urls("stateset.tests.urls")
URL = "/api/v1/_test/things"


def things(name):
    return ApiKey.objects.filter(name=name).count()


@pytest.mark.django_db
def test_repeat_returns_the_stored_answer_and_acts_once(api):
    first = api.post(URL, {"name": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post(URL, {"name": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json()["data"] == second.json()["data"]
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert first.json()["meta"]["request_id"] != second.json()["meta"]["request_id"]
    assert things("once") == 1


@pytest.mark.django_db
def test_same_key_different_body_is_422_and_acts_not(api):
    api.post(URL, {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = api.post(URL, {"name": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert things("b") == 0


@pytest.mark.django_db
def test_the_same_body_in_another_layout_is_a_replay(api):
    first = api.post(URL, b'{"name": "same", "fail": "none"}', content_type="application/json",
                     HTTP_IDEMPOTENCY_KEY="k-layout")
    second = api.post(URL, b'{ "fail":"none",\n "name":"same" }', content_type="application/json",
                      HTTP_IDEMPOTENCY_KEY="k-layout")
    assert first.status_code == second.status_code == 201, second.content
    assert second["Idempotent-Replayed"] == "true" and things("same") == 1


@pytest.mark.django_db
def test_the_same_body_with_another_query_string_is_422(api):
    api.post(f"{URL}?dry_run=true", {"name": "q"}, format="json", HTTP_IDEMPOTENCY_KEY="k-query")
    response = api.post(f"{URL}?dry_run=false", {"name": "q"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="k-query")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert things("q") == 1


@pytest.mark.django_db
def test_keys_are_per_api_key(api, make_key):
    other = APIClient()
    other.credentials(HTTP_X_API_KEY=make_key("*"))
    api.post(URL, {"name": "mine"}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    response = other.post(URL, {"name": "mine"}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert things("mine") == 2


@pytest.mark.django_db
def test_a_4xx_answer_is_replayed_too(api):
    first = api.post(URL, {"name": "c", "fail": "conflict"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="k-3")
    second = api.post(URL, {"name": "c", "fail": "conflict"}, format="json",
                      HTTP_IDEMPOTENCY_KEY="k-3")
    assert first.status_code == second.status_code == 409
    assert first.json()["error"] == second.json()["error"]
    assert second["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_crash_releases_the_key_so_a_retry_runs(api):
    crashed = api.post(URL, {"name": "d", "fail": "crash"}, format="json",
                       HTTP_IDEMPOTENCY_KEY="k-4")
    assert crashed.status_code == 500
    assert not IdempotencyRecord.objects.filter(key="k-4").exists()


@pytest.mark.django_db
def test_an_abandoned_claim_is_taken_over_after_its_lease(api):
    api.post(URL, {"name": "e"}, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    record = IdempotencyRecord.objects.get(key="k-5")
    record.status, record.locked_until = "in_progress", timezone.now() + timedelta(seconds=30)
    record.save()
    assert api.post(URL, {"name": "e"}, format="json",
                    HTTP_IDEMPOTENCY_KEY="k-5").status_code == 409
    IdempotencyRecord.objects.filter(key="k-5").update(
        locked_until=timezone.now() - timedelta(seconds=1))
    assert api.post(URL, {"name": "e"}, format="json",
                    HTTP_IDEMPOTENCY_KEY="k-5").status_code == 201


@pytest.mark.django_db
def test_an_expired_record_is_forgotten(api):
    api.post(URL, {"name": "f"}, format="json", HTTP_IDEMPOTENCY_KEY="k-6")
    IdempotencyRecord.objects.filter(key="k-6").update(
        expires_at=timezone.now() - timedelta(seconds=1))
    response = api.post(URL, {"name": "f"}, format="json", HTTP_IDEMPOTENCY_KEY="k-6")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert things("f") == 2


@pytest.mark.django_db
def test_purge_deletes_only_expired_records(api):
    from stateset.services import idempotency_purge_expired

    api.post(URL, {"name": "g"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    api.post(URL, {"name": "h"}, format="json", HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyRecord.objects.filter(key="old").update(
        expires_at=timezone.now() - timedelta(seconds=1))
    assert idempotency_purge_expired() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_act_once_and_the_others_get_409_or_the_replay(make_key):
    raw = make_key("*")
    gate = threading.Event()
    test_urls.gate["event"] = gate
    results: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def post():
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        start.wait()
        response = client.post(URL, {"name": "race"}, format="json",
                               HTTP_IDEMPOTENCY_KEY="race-key")
        with lock:
            results.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        # Let the losers see the claim in flight, then let the winner finish.
        while len(results) < 7:
            if all(not t.is_alive() for t in threads):
                break
            threading.Event().wait(0.05)
        gate.set()
        for thread in threads:
            thread.join(10)
    finally:
        test_urls.gate["event"] = None
    assert sorted(results) == [201] + [409] * 7
    assert things("race") == 1
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    replay = client.post(URL, {"name": "race"}, format="json", HTTP_IDEMPOTENCY_KEY="race-key")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_an_answer_echoing_a_nul_is_stored_and_replayed(api):
    """jsonb refuses "\\u0000": a 422 naming a client's field with a NUL in it is still answered,
    stored and replayed (found by the schemathesis run: the store failed and took the answer's
    transaction with it)."""
    body = {"email": "nul@example.com", "bad\u0000name": 1}
    first = api.post("/api/v1/customers", body, format="json", HTTP_IDEMPOTENCY_KEY="nul-1")
    assert first.status_code == 422, first.content
    assert first.json()["error"]["code"] == "validation_error"
    assert IdempotencyRecord.objects.get(key="nul-1").status == IdempotencyRecord.Status.COMPLETED
    replay = api.post("/api/v1/customers", body, format="json", HTTP_IDEMPOTENCY_KEY="nul-1")
    assert replay.status_code == 422 and replay["Idempotent-Replayed"] == "true"
    assert replay.json()["error"]["details"] == {"bad\ufffdname": ["Unknown field."]}


@pytest.mark.django_db
@pytest.mark.parametrize("fields", [(), ("nested.token",)])
def test_a_stored_answer_never_holds_a_value_shaped_like_a_secret(fields):
    from stateset import services

    claim = services.idempotency_claim(owner="o", key=f"k-{len(fields)}", method="POST",
                                       path="/x", request_hash="h")
    secret, hook = "sk_" + "A" * 40, "whsec_" + "b" * 32
    body = {"plain": "sk_short", "nested": {"token": "kept unless declared",
                                            "list": [secret, {"deep": hook}]}}
    services.idempotency_complete(record_id=claim.record_id, status=201, body=body, headers={},
                                  secret_fields=fields)
    stored = IdempotencyRecord.objects.get(id=claim.record_id).response_body
    assert stored["plain"] == "sk_short"  # too short to be one of ours
    assert stored["nested"]["list"] == [None, {"deep": None}]
    assert stored["nested"]["token"] == (None if fields else "kept unless declared")
    assert body["nested"]["list"][0] == secret  # the answer itself is not changed


@pytest.mark.django_db
def test_a_stored_answer_without_secrets_is_stored_as_sent():
    from stateset import services

    claim = services.idempotency_claim(owner="o", key="plain", method="POST", path="/x",
                                       request_hash="h")
    body = {"items": [{"sku": "sk-lower", "name": "whsec is a word", "n": 1}], "total": "9.99"}
    services.idempotency_complete(record_id=claim.record_id, status=201, body=body, headers={})
    assert IdempotencyRecord.objects.get(id=claim.record_id).response_body == body
