"""Every write of the webhooks app (SPEC §4.7): the outbox, endpoints, dispatch and delivery.

A domain service calls :func:`publish` inside its own transaction, so the event exists exactly when
the change does. After commit, a Celery task turns undispatched events into one :class:`Delivery`
per subscribed endpoint (:func:`dispatch`) and each delivery is POSTed, signed, by :func:`deliver`,
retried with exponential back-off until a 2xx answer or ``[webhooks] max_attempts``. The beat task
``webhooks_pump`` runs both every 15 s, so a lost kick or a crashed worker only delays a delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import logging
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from stateset import metrics
from stateset.db import insert_rows, update_versioned
from stateset.errors import NotFound, ValidationFailed
from webhooks import locks
from webhooks.models import EVENT_TYPES, Delivery, Endpoint, Event

logger = logging.getLogger("stateset.webhooks")
SIGNATURE_HEADER = "StateSet-Signature"


# --- the outbox -----------------------------------------------------------------------------------


class _Subscriptions:
    """Process-local set of event types some active endpoint wants, refreshed every ``ttl`` seconds:
    an event nobody subscribes to costs its outbox row and no Celery message."""

    ttl = 10.0

    def __init__(self) -> None:
        self._value: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._lock = threading.Lock()

    def wanted(self, event_type: str) -> bool:
        expires, types = self._value
        if expires < time.monotonic():
            rows = Endpoint.objects.filter(is_active=True).values_list("events", flat=True)
            types = frozenset(t for events in rows for t in events)
            with self._lock:
                self._value = (time.monotonic() + self.ttl, types)
        return "*" in types or event_type in types

    def clear(self) -> None:
        with self._lock:
            self._value = (0.0, frozenset())


subscriptions = _Subscriptions()


def publish(*, event_type: str, payload: dict[str, Any]) -> Event:
    """Write a domain event to the outbox in the caller's transaction; after commit, ask a worker to
    dispatch it when an endpoint subscribes to its type."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    event = Event(type=event_type, payload=payload)
    insert_rows([event])
    transaction.on_commit(lambda: _kick(event_type))
    return event


def _kick(event_type: str) -> None:
    if not subscriptions.wanted(event_type):
        return
    from webhooks import tasks

    try:
        tasks.webhooks_dispatch.delay()
    except Exception:  # broker down: the event waits in the outbox for the pump
        logger.warning("could not enqueue webhook dispatch; the pump will pick it up",
                       exc_info=True)


def dispatch(*, batch_size: int = 500) -> list[uuid.UUID]:
    """Create the deliveries of up to ``batch_size`` undispatched events, oldest first. Concurrent
    dispatchers skip each other's rows. Returns the ids of the deliveries created."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        events = locks.claim_undispatched_events(limit=batch_size)
        if not events:
            return []
        endpoints = list(Endpoint.objects.filter(is_active=True).only("id", "events"))
        deliveries = [Delivery(endpoint_id=endpoint.id, event_id=event.id, next_attempt_at=now,
                               created_at=now)
                      for event in events for endpoint in endpoints
                      if endpoint.subscribes_to(event.type)]
        Delivery.objects.bulk_create(deliveries, batch_size=1000)
        Event.objects.filter(id__in=[event.id for event in events]).update(dispatched_at=now)
        ids = [delivery.id for delivery in deliveries]
        transaction.on_commit(lambda: _enqueue(ids))
    return ids


def _enqueue(delivery_ids: list[uuid.UUID]) -> None:
    from webhooks import tasks

    for delivery_id in delivery_ids:
        try:
            tasks.webhooks_deliver.delay(str(delivery_id))
        except Exception:
            logger.warning("could not enqueue a webhook delivery; the pump will retry it",
                           exc_info=True)
            return


def due_deliveries(*, limit: int = 500) -> list[uuid.UUID]:
    return list(Delivery.objects.filter(status=Delivery.Status.PENDING,
                                        next_attempt_at__lte=timezone.now())
                .order_by("next_attempt_at").values_list("id", flat=True)[:limit])


# --- delivery -------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``: a receiver recomputes it with its copy of the
    secret and rejects old timestamps to stop replays."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff(attempts: int) -> timedelta:
    """The wait after failed attempt ``attempts`` (1-based): 30 s, 1 min, 2 min … with the
    defaults."""
    return timedelta(seconds=settings.WEBHOOKS_BACKOFF_SECONDS * 2 ** (attempts - 1))


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status: int | None
    error: str


def _post(url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
    """One POST with http.client: header names go out as written, and a redirect is an answer
    (a 3xx fails the attempt), never a hop to somewhere the endpoint's checks did not cover."""
    refused = target_refusal(url, resolve=True)
    if refused:
        return AttemptResult(False, None, refused)
    parts = urlsplit(url)
    connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                        else http.client.HTTPConnection)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    assert parts.hostname  # target_refusal refuses a URL without a host
    conn = connection_class(parts.hostname, parts.port, timeout=settings.WEBHOOKS_TIMEOUT)
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)  # the answer's body is not used; bounded
        status = response.status
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, timeout, TLS, bad answer
        return AttemptResult(False, None, f"{type(exc).__name__}: {exc}"[:1000])
    finally:
        conn.close()
    if 200 <= status < 300:
        return AttemptResult(True, status, "")
    return AttemptResult(False, status, f"HTTP {status}")


def deliver(*, delivery_id: uuid.UUID) -> str | None:
    """Attempt one due delivery. It is claimed with a conditional UPDATE that also pushes
    ``next_attempt_at`` past the request's timeout, so no transaction or row lock is held while the
    endpoint answers and two workers never send it at the same time. Returns the new status, or
    None when the delivery was not due (already sent, failed, or claimed elsewhere)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT + 30)
    claimed = Delivery.objects.filter(id=delivery_id, status=Delivery.Status.PENDING,
                                      next_attempt_at__lte=now).update(
        next_attempt_at=lease, attempts=F("attempts") + 1, last_attempt_at=now)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("endpoint", "event").get(id=delivery_id)
    event, endpoint = delivery.event, delivery.endpoint
    if not endpoint.is_active:  # deactivated after the event was dispatched: nothing more is sent
        Delivery.objects.filter(id=delivery.id).update(status=Delivery.Status.FAILED,
                                                       last_error="The endpoint is deactivated.")
        return Delivery.Status.FAILED
    body = orjson.dumps({"id": event.id, "type": event.type, "created_at": event.created_at,
                         "data": event.payload}, option=orjson.OPT_UTC_Z)
    timestamp = int(time.time())
    result = _post(endpoint.url, body, {
        "Content-Type": "application/json",
        "User-Agent": "StateSet-Webhooks/1.0",
        SIGNATURE_HEADER: sign(endpoint.secret, timestamp, body),
        "StateSet-Event-Id": str(event.id),
        "StateSet-Event-Type": event.type,
        "StateSet-Delivery-Id": str(delivery.id),
        "StateSet-Delivery-Attempt": str(delivery.attempts),
    })
    finished = timezone.now()
    if result.ok:
        status = Delivery.Status.SUCCEEDED
        values: dict[str, Any] = {"delivered_at": finished, "last_error": ""}
    elif delivery.attempts >= settings.WEBHOOKS_MAX_ATTEMPTS:
        status = Delivery.Status.FAILED
        values = {"last_error": result.error}
    else:
        status = Delivery.Status.PENDING
        values = {"last_error": result.error,
                  "next_attempt_at": finished + backoff(delivery.attempts)}
    Delivery.objects.filter(id=delivery.id).update(status=status, response_status=result.status,
                                                   **values)
    metrics.WEBHOOK_DELIVERIES.labels("success" if result.ok
                                      else ("failed" if status == "failed" else "retry")).inc()
    log = logger.info if result.ok else logger.warning
    log("webhook delivery", extra={"delivery_id": str(delivery.id), "event_type": event.type,
                                   "attempt": delivery.attempts, "result": status,
                                   "http_status": result.status, "error": result.error})
    return status


def deliveries_resend(*, delivery_ids: list[uuid.UUID],
                      endpoint_id: uuid.UUID | None = None) -> int:
    """Send deliveries again from a fresh count of attempts (the admin's "resend" action and
    ``POST /webhooks/{id}/deliveries/{delivery_id}/resend``). Returns how many were reset."""
    rows = Delivery.objects.filter(id__in=delivery_ids)
    if endpoint_id is not None:
        rows = rows.filter(endpoint_id=endpoint_id)
    with transaction.atomic():
        ids = list(rows.values_list("id", flat=True))
        Delivery.objects.filter(id__in=ids).update(
            status=Delivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now(),
            last_error="")
        transaction.on_commit(lambda: _enqueue(ids))
    return len(ids)


def purge(*, older_than_days: int | None = None, batch_size: int = 5000) -> int:
    """Delete dispatched events created more than ``[webhooks] retention_days`` ago, with their
    delivery log, in batches (each its own short transaction). Returns the number of events
    deleted."""
    days = settings.WEBHOOKS_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "WITH old AS (SELECT id FROM webhooks_event WHERE created_at < %s AND "
                "dispatched_at IS NOT NULL "
                "LIMIT %s), "
                "gone AS (DELETE FROM webhooks_delivery WHERE event_id IN (SELECT id FROM old)) "
                "DELETE FROM webhooks_event WHERE id IN (SELECT id FROM old)",
                [cutoff, batch_size],
            )
            count: int = cursor.rowcount
        deleted += count
        if count < batch_size:
            return deleted


# --- endpoints ------------------------------------------------------------------------------------


def target_refusal(url: str, *, resolve: bool = False) -> str:
    """Why ``url`` may not receive webhooks ("" when it may): http(s) only, and unless
    ``[webhooks] allow_private_targets``, no loopback, private, link-local or reserved address —
    checked on the literal host at registration and on every resolved address before each
    attempt."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The URL must be http:// or https:// with a host."
    if settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        return ""
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return "Private and loopback addresses cannot receive webhooks."
    addresses: list[str] = []
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if resolve:
            try:
                addresses = [str(info[4][0])
                             for info in socket.getaddrinfo(host, parts.port or 443)]
            except OSError as exc:
                return f"Cannot resolve {host}: {exc}"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            return "Private and loopback addresses cannot receive webhooks."
    return ""


def clean_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - {*EVENT_TYPES, "*"})
    if unknown:
        raise ValidationFailed("Unknown event types.",
                               details={"events": [f"Unknown event type: {name}"
                                                                             for name in unknown]})
    if not events:
        raise ValidationFailed("Subscribe to at least one event type.",
                               details={"events": ["Empty."]})
    return sorted(set(events))


def clean_url(url: str) -> str:
    refused = target_refusal(url)
    if refused:
        raise ValidationFailed(refused, code="invalid_webhook_url", details={"url": [refused]})
    return url


def _changed() -> None:
    transaction.on_commit(subscriptions.clear)


def endpoint_create(*, url: str, events: list[str], secret: str | None = None,
                    description: str = "", is_active: bool = True) -> Endpoint:
    """A new endpoint; its secret is generated when not given (``whsec_`` + 32 random bytes)."""
    endpoint = Endpoint.objects.create(
        url=clean_url(url), events=clean_events(events),
        secret=secret or f"whsec_{secrets.token_urlsafe(32)}",
        description=description, is_active=is_active)
    _changed()
    return endpoint


def endpoint_update(*, endpoint_id: uuid.UUID, fields: dict[str, Any],
                    expected_version: int | None = None) -> Endpoint:
    values = dict(fields)
    if "url" in values:
        values["url"] = clean_url(values["url"])
    if "events" in values:
        values["events"] = clean_events(values["events"])
    with transaction.atomic():
        update_versioned(Endpoint, pk=endpoint_id, expected_version=expected_version, values=values,
                         not_found=_not_found())
        _changed()
    return Endpoint.objects.get(id=endpoint_id)


def endpoint_delete(*, endpoint_id: uuid.UUID) -> None:
    """The endpoint and its delivery log go; the events stay in the outbox for other endpoints."""
    with transaction.atomic():
        deleted, _ = Endpoint.objects.filter(id=endpoint_id).delete()
        if not deleted:
            raise _not_found()
        _changed()


def _not_found() -> NotFound:
    return NotFound("No webhook endpoint with this id.", code="webhook_not_found")
