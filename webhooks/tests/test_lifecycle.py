"""SPEC §4.7: an endpoint that keeps failing is disabled and its events wait; re-enabling sends
them; a rotated secret signs alongside the new one for the overlap; the README's receiver-side
check of ``StateSet-Signature`` verifies real deliveries."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from stateset.testing import data_of, error_of
from webhooks import services, tasks
from webhooks.models import Delivery, Endpoint
from webhooks.tests.factories import Receiver, published

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def readme_verifier() -> Any:
    """The ``verify_signature`` of the README's "Verifying a delivery" snippet, run as written."""
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    section = readme[readme.index("*Verifying a delivery*"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the README's verification snippet"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # our own README's snippet
    return namespace["verify_signature"]


def deliver_one(callbacks: Any, event_type: str = "order.created") -> None:
    with callbacks(execute=True):
        published(event_type)


# --- failing endpoints ------------------------------------------------------------------------


@override_settings(WEBHOOKS_DISABLE_AFTER=3)
def test_an_endpoint_answering_500_is_disabled_and_resumes_with_what_waited(
        api, admin_client, receiver, django_capture_on_commit_callbacks):
    receiver.statuses = [500]
    created = data_of(api.post("/api/v1/webhooks", {"url": receiver.url, "events": ["*"]},
                               format="json"), 201)
    path = f"/api/v1/webhooks/{created['id']}"
    for attempt in (1, 2):
        deliver_one(django_capture_on_commit_callbacks)
        shown = data_of(api.get(path))
        assert (shown["is_active"], shown["consecutive_failures"]) == (True, attempt)
    deliver_one(django_capture_on_commit_callbacks)  # the third failure in a row
    shown = data_of(api.get(path))
    assert (shown["is_active"], shown["consecutive_failures"]) == (False, 3)
    assert shown["disabled_at"] is not None
    assert shown["disabled_reason"].startswith("Disabled after 3 consecutive failed delivery")
    assert "HTTP 500" in shown["disabled_reason"]
    assert len(receiver.requests) == 3

    # Disabled: events published meanwhile wait as pending deliveries; nothing is sent, not even
    # by the pump, and the earlier ones wait too.
    deliver_one(django_capture_on_commit_callbacks, "product.created")
    deliver_one(django_capture_on_commit_callbacks, "shipment.created")
    with django_capture_on_commit_callbacks(execute=True):
        tasks.webhooks_pump()
    assert len(receiver.requests) == 3
    deliveries = Delivery.objects.filter(endpoint_id=created["id"])
    assert deliveries.count() == 5 and set(deliveries.values_list("status", flat=True)) == {
        "pending"}

    # The back office sees it: the endpoint page shows why, the index counts it.
    page = admin_client.get(f"/admin/webhooks/endpoint/{created['id']}/change/")
    assert page.status_code == 200 and b"Disabled after 3 consecutive" in page.content
    index = admin_client.get("/admin/")
    assert re.search(rb'id="disabled-endpoints"><a [^>]*>1</a>', index.content)
    listed = admin_client.get("/admin/webhooks/endpoint/?disabled_at__isempty=0")
    assert listed.status_code == 200 and receiver.url.encode() in listed.content

    # Re-enabled: everything that waited is sent at once, and the count starts over.
    receiver.statuses = [200]
    with django_capture_on_commit_callbacks(execute=True):
        resumed = data_of(api.patch(path, {"is_active": True}, format="json"))
    assert (resumed["is_active"], resumed["consecutive_failures"], resumed["disabled_at"],
            resumed["disabled_reason"]) == (True, 0, None, "")
    assert len(receiver.requests) == 8
    assert sorted(h["StateSet-Event-Type"] for h, _ in receiver.requests[3:]) == [
        "order.created", "order.created", "order.created", "product.created", "shipment.created"]
    assert set(deliveries.values_list("status", flat=True)) == {"succeeded"}
    index = admin_client.get("/admin/")
    assert re.search(rb'id="disabled-endpoints"><a [^>]*>0</a>', index.content)


@override_settings(WEBHOOKS_DISABLE_AFTER=3)
def test_a_success_resets_the_count_of_failures_in_a_row(receiver,
                                                         django_capture_on_commit_callbacks):
    receiver.statuses = [500, 500, 200, 500, 500]
    endpoint = services.endpoint_create(url=receiver.url, events=["*"])
    counts = []
    for _ in range(5):
        deliver_one(django_capture_on_commit_callbacks)
        endpoint.refresh_from_db()
        counts.append(endpoint.consecutive_failures)
    assert counts == [1, 2, 0, 1, 2]
    assert endpoint.is_active and endpoint.disabled_at is None


@override_settings(WEBHOOKS_DISABLE_AFTER=3)
def test_attempts_under_way_when_it_is_disabled_count_no_more(receiver,
                                                              django_capture_on_commit_callbacks):
    receiver.statuses = [500]
    endpoint = services.endpoint_create(url=receiver.url, events=["*"])
    stale = Endpoint.objects.get(id=endpoint.id)  # as a worker read it before the disable
    before = endpoint.updated_at
    for _ in range(3):
        deliver_one(django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.consecutive_failures) == (False, 3)
    assert endpoint.updated_at > before and endpoint.updated_at == endpoint.disabled_at
    failed = services.AttemptResult(False, 500, "HTTP 500")
    assert services._count_attempt(stale, failed, timezone.now()) is True  # an attempt in flight
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.version) == (3, 2)


def test_a_failed_attempt_queues_its_retry_for_the_backoff(receiver, monkeypatch,
                                                           django_capture_on_commit_callbacks):
    queued: list[tuple[Any, tuple[Any, ...], float | None]] = []
    monkeypatch.setattr(services, "enqueue",
                        lambda task, *args, countdown=None: queued.append((task, args, countdown)))
    receiver.statuses = [500, 200]
    services.endpoint_create(url=receiver.url, events=["*"])
    with django_capture_on_commit_callbacks(execute=True):
        published("order.created")
    dispatched = services.dispatch()
    assert services.deliver(delivery_id=dispatched[0]) == "pending"
    delivery = Delivery.objects.get()
    retry = [(args, countdown) for task, args, countdown in queued
             if task is tasks.webhooks_deliver]
    assert retry == [((str(delivery.id),), settings.WEBHOOKS_BACKOFF_SECONDS)]
    assert delivery.next_attempt_at > timezone.now()
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())
    assert services.deliver(delivery_id=delivery.id) == "succeeded"
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == delivery.delivered_at  # the claim's lease is given back


@override_settings(WEBHOOKS_DISABLE_AFTER=1)
def test_put_re_enables_like_patch_and_a_manual_deactivation_is_not_a_disable(
        api, receiver, django_capture_on_commit_callbacks):
    receiver.statuses = [500]
    endpoint = services.endpoint_create(url=receiver.url, events=["*"])
    deliver_one(django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at is not None
    receiver.statuses = [200]
    with django_capture_on_commit_callbacks(execute=True):
        data_of(api.put(f"/api/v1/webhooks/{endpoint.id}", {"is_active": True}, format="json"))
    assert Delivery.objects.get().status == "succeeded"

    # A client's own deactivation: no reason, no waiting deliveries (SPEC: only failing endpoints
    # keep their events).
    data_of(api.patch(f"/api/v1/webhooks/{endpoint.id}", {"is_active": False}, format="json"))
    deliver_one(django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert (endpoint.disabled_at, endpoint.disabled_reason) == (None, "")
    assert Delivery.objects.count() == 1


# --- rotating the secret ----------------------------------------------------------------------


@override_settings(WEBHOOKS_ROTATION_OVERLAP=3600)
def test_during_rotation_old_and_new_secret_both_verify_and_after_it_only_the_new(
        api, receiver, django_capture_on_commit_callbacks):
    verify_signature = readme_verifier()
    created = data_of(api.post("/api/v1/webhooks", {"url": receiver.url, "events": ["*"]},
                               format="json"), 201)
    old = created["secret"]
    rotate = f"/api/v1/webhooks/{created['id']}/rotate-secret"
    rotated = api.post(rotate, HTTP_IDEMPOTENCY_KEY="rotate-1")
    new = data_of(rotated)["secret"]
    assert new.startswith("whsec_") and new != old
    assert rotated["ETag"] == '"2"'
    assert data_of(rotated)["previous_secret_expires_at"] is not None
    replay = api.post(rotate, HTTP_IDEMPOTENCY_KEY="rotate-1")
    assert replay["Idempotent-Replayed"] == "true" and data_of(replay)["secret"] is None
    assert Endpoint.objects.get(id=created["id"]).secret == new  # the replay rotated nothing
    assert "secret" not in data_of(api.get(f"/api/v1/webhooks/{created['id']}"))

    deliver_one(django_capture_on_commit_callbacks)
    headers, body = receiver.requests[-1]
    signature = headers["StateSet-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}", signature)
    assert verify_signature(new, signature, body)  # a receiver that already switched
    assert verify_signature(old, signature, body)  # one that has not yet
    assert not verify_signature("whsec_someone-else", signature, body)
    assert orjson.loads(body)["type"] == "order.created"

    # After the overlap only the new secret signs.
    Endpoint.objects.filter(id=created["id"]).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    deliver_one(django_capture_on_commit_callbacks)
    headers, body = receiver.requests[-1]
    signature = headers["StateSet-Signature"]
    assert signature.count("v1=") == 1
    assert verify_signature(new, signature, body) and not verify_signature(old, signature, body)


@override_settings(WEBHOOKS_ROTATION_OVERLAP=0)
def test_without_an_overlap_the_old_secret_stops_at_once(receiver,
                                                        django_capture_on_commit_callbacks):
    verify_signature = readme_verifier()
    endpoint = services.endpoint_create(url=receiver.url, events=["*"], secret="s" * 32)
    rotated = services.endpoint_rotate_secret(endpoint_id=endpoint.id)
    assert rotated.previous_secret == "" and rotated.previous_secret_expires_at is None
    deliver_one(django_capture_on_commit_callbacks)
    headers, body = receiver.requests[-1]
    assert verify_signature(rotated.secret, headers["StateSet-Signature"], body)
    assert not verify_signature("s" * 32, headers["StateSet-Signature"], body)


def test_the_readme_check_refuses_a_stale_timestamp_and_a_changed_body(
        receiver, django_capture_on_commit_callbacks):
    verify_signature = readme_verifier()
    endpoint = services.endpoint_create(url=receiver.url, events=["*"])
    deliver_one(django_capture_on_commit_callbacks)
    headers, body = receiver.requests[-1]
    signature = headers["StateSet-Signature"]
    assert verify_signature(endpoint.secret, signature, body)
    assert not verify_signature(endpoint.secret, signature, body + b" ")
    stale = services.sign(endpoint.secret, int(timezone.now().timestamp()) - 3600, body)
    assert not verify_signature(endpoint.secret, stale, body)


def test_rotating_needs_the_manage_scope_and_a_known_endpoint(api, client_with, db):
    endpoint = services.endpoint_create(url="https://example.com/in", events=["*"])
    path = f"/api/v1/webhooks/{endpoint.id}/rotate-secret"
    assert error_of(client_with("orders:*").post(path), 403)["code"] == "insufficient_scope"
    missing = "/api/v1/webhooks/00000000-0000-4000-8000-000000000000/rotate-secret"
    assert error_of(api.post(missing), 404)["code"] == "webhook_not_found"
    assert error_of(api.post(path, HTTP_IF_MATCH='"9"'), 412)["code"] == "precondition_failed"
    assert Endpoint.objects.get(id=endpoint.id).secret == endpoint.secret
