"""Every write of the webhooks app (SPEC §4.7): the outbox, endpoints, dispatch and delivery.

A domain service calls :func:`publish` inside its own transaction, so the event exists exactly when
the change does. After commit, a Celery task turns undispatched events into one :class:`Delivery`
per subscribed endpoint (:func:`dispatch`) and each delivery is POSTed, signed, by :func:`deliver`,
retried with exponential back-off until a 2xx answer or ``[webhooks] max_attempts``. The beat task
``webhooks_pump`` runs both every 15 s, so a lost kick or a crashed worker only delays a delivery.

An endpoint that fails ``[webhooks] disable_after`` attempts in a row is disabled (SPEC §4.7): its
events still become deliveries, which wait, pending, until a client re-enables it (``PATCH``
``is_active``), when they are sent at once. A rotated secret keeps signing for
``[webhooks] rotation_overlap`` seconds: the header then carries two ``v1=`` signatures.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import logging
import secrets
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from stateset import metrics
from stateset.db import insert_rows, update_versioned
from stateset.errors import NotFound, ValidationFailed
from stateset.queue import enqueue
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
            rows = receiving_endpoints().values_list("events", flat=True)
            types = frozenset(t for events in rows for t in events)
            with self._lock:
                self._value = (time.monotonic() + self.ttl, types)
        return "*" in types or event_type in types

    def clear(self) -> None:
        with self._lock:
            self._value = (0.0, frozenset())


subscriptions = _Subscriptions()


def receiving_endpoints() -> QuerySet[Endpoint]:
    """The endpoints whose events become deliveries: active ones, and those disabled for failing
    (their deliveries wait, pending, until re-enabled)."""
    return Endpoint.objects.filter(Q(is_active=True) | Q(disabled_at__isnull=False))


def publish(*, event_type: str, payload: dict[str, Any]) -> Event:
    """Write a domain event to the outbox in the caller's transaction; after commit, ask a worker to
    dispatch it when an endpoint subscribes to its type."""
    return publish_many([(event_type, payload)])[0]


def publish_many(events: Sequence[tuple[str, dict[str, Any]]]) -> list[Event]:
    """:func:`publish` for the events of one change (a batch of an import, the rows of a bulk
    adjustment): one INSERT for all of them and one dispatch kick after commit. Nothing is written
    for an empty list."""
    unknown = sorted({event_type for event_type, _ in events} - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types {unknown!r}")
    rows = [Event(type=event_type, payload=payload) for event_type, payload in events]
    if rows:
        insert_rows(rows)
        types = frozenset(event_type for event_type, _ in events)
        transaction.on_commit(lambda: _kick(types))
    return rows


def _kick(event_types: Iterable[str]) -> None:
    if not any(subscriptions.wanted(event_type) for event_type in event_types):
        return
    from webhooks import tasks

    # Broker down or hung: the event waits in the outbox for the pump (one bounded try, then the
    # broker's breaker skips it).
    enqueue(tasks.webhooks_dispatch)


def dispatch(*, batch_size: int = 500) -> list[uuid.UUID]:
    """Create the deliveries of up to ``batch_size`` undispatched events, oldest first. Concurrent
    dispatchers skip each other's rows. Returns the ids of the deliveries created."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        events = locks.claim_undispatched_events(limit=batch_size)
        if not events:
            return []
        endpoints = {endpoint.id: endpoint for endpoint in
                     receiving_endpoints().only("id", "events", "is_active")}
        deliveries = [Delivery(endpoint_id=endpoint.id, event_id=event.id, next_attempt_at=now,
                               created_at=now)
                      for event in events for endpoint in endpoints.values()
                      if endpoint.subscribes_to(event.type)]
        Delivery.objects.bulk_create(deliveries, batch_size=1000)
        Event.objects.filter(id__in=[event.id for event in events]).update(dispatched_at=now)
        ids = [delivery.id for delivery in deliveries]
        # A disabled endpoint's deliveries wait for it to be re-enabled.
        due = [delivery.id for delivery in deliveries
               if endpoints[delivery.endpoint_id].is_active]
        transaction.on_commit(lambda: _enqueue(due))
    return ids


def _enqueue(delivery_ids: list[uuid.UUID]) -> None:
    from webhooks import tasks

    for delivery_id in delivery_ids:
        if not enqueue(tasks.webhooks_deliver, str(delivery_id)):
            return  # the pump sends what is due


def due_deliveries(*, limit: int = 500) -> list[uuid.UUID]:
    """Pending deliveries whose time has come, of active endpoints (a disabled endpoint's wait)."""
    return list(Delivery.objects.filter(status=Delivery.Status.PENDING,
                                        next_attempt_at__lte=timezone.now(),
                                        endpoint__is_active=True)
                .order_by("next_attempt_at").values_list("id", flat=True)[:limit])


# --- delivery -------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes, *, previous: str = "") -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``: a receiver recomputes it with its copy of the
    secret and rejects old timestamps to stop replays. With ``previous`` (a rotated secret still in
    its overlap) a second ``v1=`` follows, signed with it: a receiver accepts the delivery when any
    ``v1`` matches, so it may switch secrets at any time during the overlap."""
    signed = f"{timestamp}.".encode() + body
    macs = [hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
            for key in (secret, previous) if key]
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in macs)])


def signing_secrets(endpoint: Endpoint, now: datetime) -> tuple[str, str]:
    """(current secret, previous secret or "" once its overlap has ended)."""
    overlapping = (endpoint.previous_secret and endpoint.previous_secret_expires_at is not None
                   and endpoint.previous_secret_expires_at > now)
    return endpoint.secret, endpoint.previous_secret if overlapping else ""


MAX_QUEUED_RETRY = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    """The wait after failed attempt ``attempts`` (1-based): 30 s, 1 min, 2 min … with the
    defaults."""
    return timedelta(seconds=settings.WEBHOOKS_BACKOFF_SECONDS * 2 ** (attempts - 1))


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status: int | None
    error: str


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address`` (already resolved and checked) instead of resolving ``host`` again;
    the Host header is still the URL's (http.client builds it from ``host``/``port``)."""

    def __init__(self, host: str, port: int | None, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As :class:`_PinnedHTTPConnection`, over TLS: the server name sent (SNI) and the name the
    certificate must match are the URL's host, not the address connected to."""

    def __init__(self, host: str, port: int | None, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=tls_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = tls_context().wrap_socket(sock, server_hostname=self.host)


def tls_context() -> ssl.SSLContext:
    """Certificates verified against the system's CAs, host name checked (tests trust their own)."""
    return ssl.create_default_context()


def _post(url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
    """One POST with http.client: header names go out as written, and a redirect is an answer
    (a 3xx fails the attempt), never a hop to somewhere the endpoint's checks did not cover. The
    host is resolved once, every address it has is checked, and the connection goes to the checked
    address (:func:`resolve_target`): a name that answers differently the next time (DNS
    rebinding) cannot move the request to an internal address."""
    address, refused = resolve_target(url)
    if refused:
        return AttemptResult(False, None, refused)
    parts = urlsplit(url)
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    conn = connection_class(parts.hostname or "", parts.port, address=address,
                            timeout=settings.WEBHOOKS_TIMEOUT)
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
    due = Delivery.objects.filter(id=delivery_id, status=Delivery.Status.PENDING,
                                  next_attempt_at__lte=now)
    claimed = due.filter(attempts__lt=settings.WEBHOOKS_MAX_ATTEMPTS).update(
        next_attempt_at=lease, attempts=F("attempts") + 1, last_attempt_at=now)
    if not claimed:
        # Out of attempts yet still pending (a worker died between its claim and its record): it is
        # failed now, never claimed again.
        if due.filter(attempts__gte=settings.WEBHOOKS_MAX_ATTEMPTS).update(
                status=Delivery.Status.FAILED,
                last_error="Attempts exhausted; the last one did not finish."):
            return Delivery.Status.FAILED
        return None
    delivery = Delivery.objects.select_related("endpoint", "event").get(id=delivery_id)
    event, endpoint = delivery.event, delivery.endpoint
    if not endpoint.is_active and endpoint.disabled_at is not None:
        # Disabled for failing: the delivery waits, pending, its claim given back, until a client
        # re-enables the endpoint (the pump skips it meanwhile).
        Delivery.objects.filter(id=delivery.id).update(attempts=F("attempts") - 1,
                                                       next_attempt_at=now)
        return None
    if not endpoint.is_active:  # deactivated after the event was dispatched: nothing more is sent
        Delivery.objects.filter(id=delivery.id).update(status=Delivery.Status.FAILED,
                                                       last_error="The endpoint is deactivated.")
        return Delivery.Status.FAILED
    try:
        body = orjson.dumps({"id": event.id, "type": event.type, "created_at": event.created_at,
                             "data": event.payload}, option=orjson.OPT_UTC_Z)
        timestamp = int(time.time())
        secret, previous = signing_secrets(endpoint, now)
        result = _post(endpoint.url, body, {
            "Content-Type": "application/json",
            "User-Agent": "StateSet-Webhooks/1.0",
            SIGNATURE_HEADER: sign(secret, timestamp, body, previous=previous),
            "StateSet-Event-Id": str(event.id),
            "StateSet-Event-Type": event.type,
            "StateSet-Delivery-Id": str(delivery.id),
            "StateSet-Delivery-Attempt": str(delivery.attempts),
        })
    except Exception as exc:
        # Whatever went wrong (a URL stored before today's checks, an unencodable payload), the
        # attempt happened: it is recorded and counted, so the delivery ends at its attempt limit
        # instead of being claimed and retried forever.
        logger.exception("webhook delivery attempt raised", extra={"delivery_id": str(delivery.id)})
        result = AttemptResult(False, None, f"Delivery failed: {type(exc).__name__}"[:1000])
    finished = timezone.now()
    retry_in: timedelta | None = None
    if result.ok:
        status = Delivery.Status.SUCCEEDED
        values: dict[str, Any] = {"delivered_at": finished, "last_error": "",
                                  "next_attempt_at": finished}  # the claim's lease is given back
    elif delivery.attempts >= settings.WEBHOOKS_MAX_ATTEMPTS:
        status = Delivery.Status.FAILED
        values = {"last_error": result.error, "next_attempt_at": finished}
    else:
        status = Delivery.Status.PENDING
        retry_in = backoff(delivery.attempts)
        values = {"last_error": result.error, "next_attempt_at": finished + retry_in}
    Delivery.objects.filter(id=delivery.id).update(status=status, response_status=result.status,
                                                   **values)
    disabled = _count_attempt(endpoint, result, finished)
    if retry_in is not None and not disabled and retry_in <= MAX_QUEUED_RETRY:
        # The retry is queued for its time (the backoff), not left to the next pump: the pump
        # picks up what a lost message leaves behind, and the long waits (a worker holds a
        # delayed message unacknowledged; RabbitMQ's consumer_timeout is 30 min).
        from webhooks import tasks

        enqueue(tasks.webhooks_deliver, str(delivery.id), countdown=retry_in.total_seconds())
    metrics.WEBHOOK_DELIVERIES.labels("success" if result.ok
                                      else ("failed" if status == "failed" else "retry")).inc()
    log = logger.info if result.ok else logger.warning
    log("webhook delivery", extra={"delivery_id": str(delivery.id), "event_type": event.type,
                                   "attempt": delivery.attempts, "result": status,
                                   "http_status": result.status, "error": result.error})
    return status


def _count_attempt(endpoint: Endpoint, result: AttemptResult, now: datetime) -> bool:
    """A 2xx answer resets the endpoint's failures in a row; a failure of an active endpoint adds
    one (attempts already under way when it was disabled count no more), and the one that reaches
    ``[webhooks] disable_after`` disables the endpoint with its reason (one UPDATE each: concurrent
    attempts count exactly, and only one of them disables). True when the endpoint is disabled."""
    rows = Endpoint.objects.filter(id=endpoint.id)
    if result.ok:
        if endpoint.consecutive_failures:
            rows.update(consecutive_failures=0)
        return False
    limit = settings.WEBHOOKS_DISABLE_AFTER
    counted = rows.filter(is_active=True, consecutive_failures__lt=limit).update(
        consecutive_failures=F("consecutive_failures") + 1)
    reason = (f"Disabled after {limit} consecutive failed delivery attempts; the last: "
              f"{result.error}")[:500]
    if rows.filter(is_active=True, consecutive_failures__gte=limit).update(
            is_active=False, disabled_at=now, disabled_reason=reason, version=F("version") + 1,
            updated_at=now):
        subscriptions.clear()
        logger.warning("webhook endpoint disabled", extra={"endpoint_id": str(endpoint.id),
                                                           "failures": limit,
                                                           "error": result.error})
        return True
    return not counted  # not counted and not disabled now: the endpoint was inactive already


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


PRIVATE_TARGET = "Private, loopback and other internal addresses cannot receive webhooks."
# IPv6 ranges that carry an IPv4 address or reach one through a translator (SPEC §4.7), beyond what
# ``ipaddress`` flags: NAT64 (well-known and local-use prefixes), IPv4-compatible, IPv4-translated.
_EMBEDDING_V6 = tuple(ipaddress.ip_network(net) for net in (
    "64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96"))


def address_refusal(address: str) -> str:
    """Why ``address`` (an IP literal) may not receive webhooks, "" when it may. Refused: loopback,
    private, link-local, unique-local, shared (CGNAT), multicast, unspecified, reserved and
    documentation ranges, and any IPv6 address that embeds or translates to an IPv4 one (mapped,
    compatible, NAT64, 6to4, Teredo) — those are refused whatever the IPv4 address inside."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return PRIVATE_TARGET
    if isinstance(ip, ipaddress.IPv6Address) and (
            ip.ipv4_mapped is not None or ip.sixtofour is not None or ip.teredo is not None
            or ip.is_site_local or any(ip in net for net in _EMBEDDING_V6)):
        return PRIVATE_TARGET
    if (not ip.is_global or ip.is_multicast or ip.is_unspecified or ip.is_reserved or ip.is_loopback
            or ip.is_link_local or ip.is_private):
        return PRIVATE_TARGET
    return ""


def _url_refusal(url: str) -> tuple[str, str, int]:
    """(refusal, host, port) from the URL alone: http(s), a host, a port in 1–65535."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The URL must be http:// or https:// with a host.", "", 0
    try:
        port = parts.port
    except ValueError:
        return "The URL's port must be between 1 and 65535.", "", 0
    if port is not None and not 1 <= port <= 65535:
        return "The URL's port must be between 1 and 65535.", "", 0
    return "", parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _literal_address(host: str) -> str | None:
    """The address a host names without DNS: an IP literal, or a numeric IPv4 shorthand that the
    resolver would read as one (``127.1``, ``0x7f000001``, ``2130706433``)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def target_refusal(url: str) -> str:
    """Why ``url`` may not be registered ("" when it may): scheme, port, and unless
    ``[webhooks] allow_private_targets``, a host that is (or spells) an internal address. A name is
    checked again, resolved, before every attempt (:func:`resolve_target`)."""
    refused, host, _ = _url_refusal(url)
    if refused or settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        return refused
    if host == "localhost" or host.endswith(".localhost"):
        return PRIVATE_TARGET
    literal = _literal_address(host)
    return address_refusal(literal) if literal is not None else ""


def getaddrinfo(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now (tests replace this with a fake resolver)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def resolve_target(url: str) -> tuple[str, str]:
    """(address to connect to, refusal): the host is resolved ONCE and every address it answers is
    checked; the first is the one connected to. Refused when any is internal (unless
    ``[webhooks] allow_private_targets``), or when it does not resolve."""
    refused, host, port = _url_refusal(url)
    if refused:
        return "", refused
    literal = _literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = list(dict.fromkeys(getaddrinfo(host, port)))
        except (OSError, UnicodeError) as exc:
            return "", f"Cannot resolve {host[:200]}: {type(exc).__name__}"
        if not addresses:
            return "", f"Cannot resolve {host[:200]}."
    if not settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        if host == "localhost" or host.endswith(".localhost"):
            return "", PRIVATE_TARGET
        for address in addresses:
            refused = address_refusal(address)
            if refused:
                return "", refused
    return addresses[0].split("%", 1)[0], ""


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


def new_secret() -> str:
    """``whsec_`` + 32 random bytes, URL-safe."""
    return f"whsec_{secrets.token_urlsafe(32)}"


def endpoint_create(*, url: str, events: list[str], secret: str | None = None,
                    description: str = "", is_active: bool = True) -> Endpoint:
    """A new endpoint; its secret is generated when not given (:func:`new_secret`)."""
    endpoint = Endpoint.objects.create(
        url=clean_url(url), events=clean_events(events), secret=secret or new_secret(),
        description=description, is_active=is_active)
    _changed()
    return endpoint


def endpoint_update(*, endpoint_id: uuid.UUID, fields: dict[str, Any],
                    expected_version: int | None = None) -> Endpoint:
    """Change url, events, description, is_active (``PATCH``/``PUT`` and the admin). Setting
    ``is_active`` on an inactive endpoint re-enables it: the failure count and the reason it was
    disabled are cleared and its pending deliveries are sent at once (queued after commit). Locks
    the endpoint. Raises NotFound, PreconditionFailed (412), ValidationFailed."""
    values = dict(fields)
    if "url" in values:
        values["url"] = clean_url(values["url"])
    if "events" in values:
        values["events"] = clean_events(values["events"])
    with transaction.atomic():
        current = locks.lock_endpoint(endpoint_id)
        if current is None:
            raise _not_found()
        resume = values.get("is_active") is True and not current.is_active
        if resume:
            values.update(consecutive_failures=0, disabled_at=None, disabled_reason="")
        update_versioned(Endpoint, pk=endpoint_id, expected_version=expected_version, values=values,
                         not_found=_not_found())
        if resume:
            _resume(endpoint_id)
        _changed()
    return Endpoint.objects.get(id=endpoint_id)


def _resume(endpoint_id: uuid.UUID) -> None:
    """The pending deliveries of a re-enabled endpoint are due now, and queued after commit."""
    pending = Delivery.objects.filter(endpoint_id=endpoint_id, status=Delivery.Status.PENDING)
    ids = list(pending.values_list("id", flat=True))
    pending.update(next_attempt_at=timezone.now())
    transaction.on_commit(lambda: _enqueue(ids))


def endpoint_rotate_secret(*, endpoint_id: uuid.UUID,
                           expected_version: int | None = None) -> Endpoint:
    """A new signing secret (``POST /webhooks/{id}/rotate-secret``, shown once). For
    ``[webhooks] rotation_overlap`` seconds the old one keeps signing too (two ``v1=`` in
    ``StateSet-Signature``), so a receiver can switch without missing a delivery; rotating again
    within the overlap drops the oldest. Locks the endpoint. Raises NotFound, PreconditionFailed."""
    overlap = settings.WEBHOOKS_ROTATION_OVERLAP
    with transaction.atomic():
        current = locks.lock_endpoint(endpoint_id)
        if current is None:
            raise _not_found()
        update_versioned(Endpoint, pk=endpoint_id, expected_version=expected_version,
                         not_found=_not_found(), values={
                             "secret": new_secret(),
                             "previous_secret": current.secret if overlap else "",
                             "previous_secret_expires_at":
                                 timezone.now() + timedelta(seconds=overlap) if overlap else None})
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
