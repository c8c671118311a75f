"""SPEC §4.7: events written with the change, delivered signed, retried with back-off,
resendable."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections import Counter
from datetime import timedelta

import orjson
import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from stateset.testing import data_of, error_of, run_threads
from webhooks import services, tasks
from webhooks.models import Delivery, Endpoint, Event
from webhooks.tests.factories import (
    DeliveryFactory,
    EndpointFactory,
    EventFactory,
    Receiver,
    published,
)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


# What an order's creation publishes (orders' tests check that it does); here only its shape
# matters.
ORDER_CREATED = {"order_id": "0b9f6a2e-0000-4000-8000-000000000001", "order_number": "ORD-000042",
                 "total_amount": "25.00",
                 "items": [{"sku": "HOOK-1", "quantity": 2, "unit_price": "12.50"}]}


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does with StateSet-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">."""
    parts = dict(part.split("=", 1) for part in headers["StateSet-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def test_a_published_event_reaches_its_subscriber_signed(api, db, receiver,
                                                         django_capture_on_commit_callbacks):
    created = data_of(api.post("/api/v1/webhooks",
                               {"url": receiver.url, "events": ["order.created"]},
                               format="json"), 201)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in data_of(api.get(f"/api/v1/webhooks/{created['id']}"))  # shown only once

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.publish(event_type="order.created", payload=ORDER_CREATED)
        services.publish(event_type="inventory.reserved", payload={"reference_id": "x"})

    assert len(receiver.requests) == 1  # inventory.reserved was written too, but nobody subscribed
    headers, body = receiver.requests[0]
    assert verify(secret, headers, body)
    assert not verify("whsec_another", headers, body)
    payload = orjson.loads(body)
    event = Event.objects.get(type="order.created")
    assert headers["StateSet-Event-Id"] == str(event.id) == payload["id"]
    assert headers["StateSet-Event-Type"] == "order.created" == payload["type"]
    assert payload["data"] == ORDER_CREATED
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 1, 200)
    assert set(Event.objects.values_list("type", flat=True)) == {"order.created",
                                                                 "inventory.reserved"}
    assert not Event.objects.filter(dispatched_at__isnull=True).exists()


def test_a_change_that_rolls_back_publishes_nothing(db, receiver,
                                                    django_capture_on_commit_callbacks):
    EndpointFactory(url=receiver.url, events=["*"])
    with (django_capture_on_commit_callbacks(execute=True) as callbacks,
          pytest.raises(RuntimeError), transaction.atomic()):
        services.publish(event_type="order.created", payload=ORDER_CREATED)
        raise RuntimeError("the domain change failed after publishing")
    assert callbacks == []  # no kick either
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert receiver.requests == []


def test_an_unknown_event_type_is_refused_and_writes_nothing(db):
    with pytest.raises(ValueError), transaction.atomic():
        services.publish(event_type="order.exploded", payload={})
    assert not Event.objects.exists()


@override_settings(WEBHOOKS_MAX_ATTEMPTS=3, WEBHOOKS_BACKOFF_SECONDS=30)
def test_failures_back_off_exponentially_then_give_up_and_resend_starts_over(db, receiver,
                                                                            django_capture_on_commit_callbacks):
    receiver.statuses = [500, 503, 500, 200]
    services.endpoint_create(url=receiver.url, events=["order.created"])
    with django_capture_on_commit_callbacks(execute=True):
        published("order.created", ORDER_CREATED)
    deliveries = Delivery.objects.filter(event__type="order.created")
    delivery = deliveries.get()
    waits = []
    for attempt in (1, 2, 3):
        delivery.refresh_from_db()
        assert delivery.attempts == attempt
        if attempt < 3:
            assert delivery.status == "pending" and delivery.response_status in (500, 503)
            waits.append(delivery.next_attempt_at - delivery.last_attempt_at)
            assert services.deliver(delivery_id=delivery.id) is None  # not due yet: nothing sent
            deliveries.update(next_attempt_at=timezone.now())
            services.deliver(delivery_id=delivery.id)
    assert [round(w.total_seconds()) for w in waits] == [30, 60]
    assert (delivery.status, delivery.last_error) == ("failed", "HTTP 500")
    assert len(
        [r for r in receiver.requests if r[0]["StateSet-Event-Type"] == "order.created"]) == 3

    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_resend(delivery_ids=[delivery.id]) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 1, 200)


@pytest.mark.django_db(transaction=True)
def test_a_delivery_is_sent_once_when_workers_race(receiver):
    delivery = DeliveryFactory(endpoint=EndpointFactory(url=receiver.url, events=["order.created"]),
                               event__payload={"order_id": "x"})
    results = run_threads(8, lambda _: services.deliver(delivery_id=delivery.id))
    assert Counter(results) == {"succeeded": 1, None: 7}
    assert len(receiver.requests) == 1


def test_the_pump_delivers_what_a_lost_kick_left_behind(db, receiver, monkeypatch,
                                                        django_capture_on_commit_callbacks):
    services.endpoint_create(url=receiver.url, events=["order.created"])
    monkeypatch.setattr(services, "_kick", lambda event_type: None)  # e.g. the broker was down
    with django_capture_on_commit_callbacks(execute=True):
        published("order.created", ORDER_CREATED)
        published("inventory.reserved", {"reference_id": "x"})
    assert receiver.requests == [] and Event.objects.filter(dispatched_at__isnull=True).count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        tasks.webhooks_pump()
    assert len(receiver.requests) == 1
    # inventory.reserved: no subscriber
    assert not Event.objects.filter(dispatched_at__isnull=True).exists()


def test_purge_drops_old_dispatched_events_with_their_deliveries(db, receiver):
    endpoint = services.endpoint_create(url=receiver.url, events=["*"])
    old = timezone.now() - timedelta(days=31)
    stale = EventFactory(created_at=old, dispatched_at=old)
    DeliveryFactory(endpoint=endpoint, event=stale, status="succeeded")
    recent = EventFactory(dispatched_at=timezone.now())
    waiting = EventFactory(created_at=old)
    assert services.purge(batch_size=1) == 1
    assert set(Event.objects.values_list("id", flat=True)) == {recent.id, waiting.id}
    assert not Delivery.objects.exists()


# --- the API ------------------------------------------------------------------------------------


def test_webhooks_need_the_manage_scope(client_with, anon_client, db):
    assert error_of(anon_client.get("/api/v1/webhooks"), 401)["code"] == "authentication_required"
    assert error_of(client_with("orders:*").get("/api/v1/webhooks"),
                    403)["code"] == "insufficient_scope"
    assert error_of(client_with("webhooks:read").post("/api/v1/webhooks", {}, format="json"), 403)
    assert data_of(client_with("webhooks:manage").get("/api/v1/webhooks"))["items"] == []


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://example.com/x", "events": ["order.created"]}, "url"),
    ({"url": "https://example.com/x", "events": ["order.exploded"]}, "events"),
    ({"url": "https://example.com/x", "events": []}, "events"),
    ({"url": "https://example.com/x", "events": ["*"], "secret": "short"}, "secret"),
    ({"url": "https://example.com/x", "events": ["*"], "colour": "red"}, "colour"),
    ({"url": "https://example.com/x", "events": ["*"], "is_active": "false"}, "is_active"),
    ({"url": "https://example.com/x", "events": ["*"], "is_active": 0}, "is_active"),
])
def test_bad_endpoints_are_422_and_write_nothing(api, body, field):
    error = error_of(api.post("/api/v1/webhooks", body, format="json"), 422)
    assert field in error["details"]
    assert not Endpoint.objects.exists()


@override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False)
@pytest.mark.parametrize("url",
                         ["http://127.0.0.1:8000/x", "http://localhost/x", "http://10.1.2.3/x",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/x"])
def test_private_targets_are_refused(api, url):
    error = error_of(api.post("/api/v1/webhooks", {"url": url, "events": ["*"]}, format="json"),
                     422)
    assert error["code"] == "invalid_webhook_url"
    assert not Endpoint.objects.exists()


@override_settings(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False)
def test_a_name_that_resolves_to_a_private_address_is_not_sent(db, monkeypatch):
    monkeypatch.setattr("socket.getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("10.0.0.7", 443))])
    delivery = DeliveryFactory(endpoint=EndpointFactory(url="https://hooks.example.com/in"))
    assert services.deliver(delivery_id=delivery.id) == "pending"
    delivery.refresh_from_db()
    assert "Private" in delivery.last_error and delivery.response_status is None


def test_update_with_if_match_and_delete(api, db):
    created = data_of(api.post("/api/v1/webhooks", {"url": "https://example.com/a", "events": ["*"],
                                                    "secret": "s" * 32}, format="json"), 201)
    assert created["secret"] == "s" * 32
    path = f"/api/v1/webhooks/{created['id']}"
    stale = api.patch(path, {"is_active": False}, format="json", HTTP_IF_MATCH='"7"')
    assert error_of(stale, 412)["code"] == "precondition_failed"
    updated = api.patch(path, {"events": ["order.created", "order.cancelled"]}, format="json",
                        HTTP_IF_MATCH='"1"')
    assert data_of(updated)["events"] == ["order.cancelled", "order.created"]
    assert updated["ETag"] == '"2"'
    assert api.delete(path).status_code == 204
    assert error_of(api.get(path), 404)["code"] == "webhook_not_found"
    assert error_of(api.get("/api/v1/webhooks/not-a-uuid"), 404)["code"] == "webhook_not_found"


def test_delivery_log_has_a_fixed_query_count_and_resend(api, receiver, django_assert_num_queries,
                                                         django_capture_on_commit_callbacks):
    endpoint = services.endpoint_create(url=receiver.url, events=["*"])
    for _ in range(20):
        Delivery.objects.create(endpoint=endpoint, event=Event.objects.create(type="order.created"),
                                status="failed", attempts=8, last_error="HTTP 500")
    path = f"/api/v1/webhooks/{endpoint.id}/deliveries"
    api.get(path)  # the key's first use records last_used_at once
    for limit in (1, 20):
        # endpoint exists, page, and a bounded count only when the page is not the rest of the list
        # (the key is cached)
        with django_assert_num_queries(3 if limit < 20 else 2):
            page = data_of(api.get(f"{path}?status=failed&limit={limit}"))
        assert len(page["items"]) == limit and page["items"][0]["event_type"] == "order.created"
    assert error_of(api.get(f"{path}?status=lost"), 422)["code"] == "invalid_parameter"
    target = page["items"][0]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        resent = data_of(api.post(f"{path}/{target}/resend"))
    assert resent["id"] == target
    assert Delivery.objects.get(id=target).status == "succeeded"
    assert error_of(api.post(f"{path}/{uuid.uuid4()}/resend"), 404)["code"] == "delivery_not_found"


# --- the back office ----------------------------------------------------------------------------


def test_admin_index_counts_failed_deliveries_and_the_resend_action_sends(admin_client, receiver,
                                                                          django_capture_on_commit_callbacks):
    endpoint = services.endpoint_create(url=receiver.url, events=["*"])
    delivery = Delivery.objects.create(endpoint=endpoint,
                                       event=Event.objects.create(type="order.created"),
                                       status="failed", attempts=8)
    index = admin_client.get("/admin/")
    assert index.status_code == 200
    failed = (b'<td id="failed-webhooks">'
              b'<a href="/admin/webhooks/delivery/?status__exact=failed">1</a>')
    assert failed in index.content
    assert admin_client.get("/admin/webhooks/delivery/?status__exact=failed").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/webhooks/delivery/", {"action": "resend",
                                                                   "_selected_action": [
                                                                       str(delivery.id)]})
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.requests) == 1


def test_a_deliverys_page_resends_it_for_whoever_may_change_deliveries(
        admin_client, client, receiver, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Permission, User

    endpoint = services.endpoint_create(url=receiver.url, events=["*"])
    delivery = Delivery.objects.create(endpoint=endpoint,
                                       event=Event.objects.create(type="order.created"),
                                       status="failed", attempts=8, last_error="HTTP 500")
    page_url = f"/admin/webhooks/delivery/{delivery.id}/change/"
    resend_url = f"/admin/webhooks/delivery/{delivery.id}/resend/"
    page = admin_client.get(page_url).content.decode()
    assert f'action="{resend_url}"' in page and 'value="Resend this delivery"' in page

    viewer = User.objects.create_user("hooks-viewer", password="x", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_delivery"))
    client.force_login(viewer)
    shown = client.get(page_url)
    assert shown.status_code == 200 and b"Resend this delivery" not in shown.content
    assert client.post(resend_url).status_code == 403
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 8)

    assert admin_client.get(resend_url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(resend_url, follow=True)
    assert done.redirect_chain[-1][0] == page_url
    assert (f"order.created to {receiver.url}: queued again (attempts start over)."
            in [str(m) for m in done.context["messages"]])
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.requests) == 1
    gone = admin_client.post(f"/admin/webhooks/delivery/{uuid.uuid4()}/resend/", follow=True)
    assert "No such delivery." in [str(m) for m in gone.context["messages"]]


def test_admin_creates_endpoints_through_the_service(admin_client, db):
    response = admin_client.post("/admin/webhooks/endpoint/add/", {
        "url": "https://example.com/in", "events": "order.created,order.exploded",
        "description": "", "is_active": "on"})
    assert response.status_code == 200  # the form again, with the service's reason
    assert b"Unknown event type: order.exploded" in response.content
    assert not Endpoint.objects.exists()
    admin_client.post("/admin/webhooks/endpoint/add/", {"url": "https://example.com/in",
                                                        "events": "order.created",
                                                        "is_active": "on"})
    endpoint = Endpoint.objects.get()
    assert endpoint.events == ["order.created"] and endpoint.secret.startswith("whsec_")


def test_a_deactivated_endpoint_is_sent_nothing_more(receiver, db):
    endpoint = EndpointFactory(url=receiver.url)
    delivery = DeliveryFactory(endpoint=endpoint)
    services.endpoint_update(endpoint_id=endpoint.id, fields={"is_active": False})
    assert services.deliver(delivery_id=delivery.id) == "failed"
    delivery.refresh_from_db()
    assert delivery.last_error == "The endpoint is deactivated." and receiver.requests == []


@pytest.mark.parametrize("count", [1, 20])
def test_endpoint_list_and_delivery_changelist_have_fixed_query_counts(api, admin_client, count,
                                                                       django_assert_num_queries):
    for n in range(count):
        endpoint = services.endpoint_create(url=f"https://example.com/{n}", events=["*"])
        Delivery.objects.create(endpoint=endpoint, event=Event.objects.create(type="order.created"),
                                status="failed")
    api.get("/api/v1/webhooks")  # the key's first use records last_used_at once
    with django_assert_num_queries(1):  # one page holding the whole list (the key is cached)
        assert len(data_of(api.get("/api/v1/webhooks?limit=50"))["items"]) == count
    admin_client.get("/admin/webhooks/delivery/")  # session and permission caches
    with django_assert_num_queries(4):  # session, user, bounded count, one page with its joins
        assert admin_client.get("/admin/webhooks/delivery/").status_code == 200
