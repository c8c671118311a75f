"""factory_boy factories for the webhooks app, and :func:`published`: a synthetic domain event
written the way every domain service writes one (``webhooks.services.publish`` in a transaction),
so the webhooks tests need no domain app."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import factory
from django.db import transaction
from factory.django import DjangoModelFactory

from webhooks import services
from webhooks.models import Delivery, Endpoint, Event


class EndpointFactory(DjangoModelFactory):
    """An endpoint made through ``webhooks.services.endpoint_create`` (URL and events checked,
    secret generated unless given, the subscription cache dropped)."""

    class Meta:
        model = Endpoint

    url = factory.Sequence(lambda n: f"https://example.com/hooks/{n}")
    events = factory.LazyFunction(lambda: ["*"])
    description = ""
    is_active = True

    @classmethod
    def _create(cls, model_class: type[Endpoint], *args: Any, **kwargs: Any) -> Endpoint:
        return services.endpoint_create(**kwargs)


class EventFactory(DjangoModelFactory):
    """An outbox row written directly (not dispatched, no kick): for delivery and purge tests."""

    class Meta:
        model = Event

    type = "order.created"
    payload = factory.LazyFunction(dict)


class DeliveryFactory(DjangoModelFactory):
    class Meta:
        model = Delivery

    endpoint = factory.SubFactory(EndpointFactory)
    event = factory.SubFactory(EventFactory)


def published(event_type: str = "order.created", payload: dict[str, Any] | None = None) -> Event:
    """Publish a synthetic ``event_type`` event in its own transaction, as a domain service does:
    the outbox row commits with it and the dispatch kick runs after commit."""
    with transaction.atomic():
        return services.publish(event_type=event_type, payload=payload if payload is not None else {
            "order_id": "00000000-0000-0000-0000-000000000001", "order_number": "ORD-000001"})


@contextmanager
def outbox() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The domain events written while the block runs, oldest first, as (type, payload) pairs
    (the list is filled when the block ends): what a change published, whatever came before it."""
    before = set(Event.objects.values_list("id", flat=True))
    written: list[tuple[str, dict[str, Any]]] = []
    yield written
    written.extend(Event.objects.exclude(id__in=before).order_by("created_at", "id")
                   .values_list("type", "payload"))


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it is sent and answers ``statuses`` in turn
    (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.times: list[float] = []  # time.monotonic() of each request
        self.statuses = [200]
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), body))  # names as sent
                receiver.times.append(time.monotonic())
                status = (receiver.statuses.pop(0) if len(receiver.statuses) > 1
                          else receiver.statuses[0])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
