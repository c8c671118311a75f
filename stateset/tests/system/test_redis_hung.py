"""SPEC §10: Redis hanging — accepting connections, never answering — as the cache, the rate
limiter's store and the Celery broker. Each request pays at most ``[redis] timeout`` (100 ms) once,
then the circuit breakers skip Redis for a few seconds: every endpoint stays under one second (it
took 10 s for an order list, 20 s for a product detail, 40 s for ``POST /orders``), and the
breakers' state is visible in /metrics and the log."""

from __future__ import annotations

import logging
import socket
import threading
import time
from decimal import Decimal

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from catalog.models import Product
from customers.models import Customer
from inventory import services as inventory_services
from stateset import queue, services
from stateset.breaker import broker_breaker, redis_breaker
from stateset.celery import app as celery_app
from stateset.keys import key_cache
from stateset.models import ApiKey
from webhooks import services as webhook_services

pytestmark = pytest.mark.django_db


class HungServer:
    """Listens on 127.0.0.1, accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)  # kept open, never answered

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def hung():
    server = HungServer()
    yield server
    server.close()


@pytest.fixture
def hung_redis(hung, settings):
    """The cache and the broker both on the hung server, with the project's own cache options."""
    cache = dict(settings.CACHES["default"])
    if cache["BACKEND"] != "django_redis.cache.RedisCache":
        pytest.skip("needs the Redis cache configuration (REDIS_URL)")
    cache["LOCATION"] = f"redis://127.0.0.1:{hung.port}/0"
    eager, broker = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    celery_app.conf.task_always_eager, celery_app.conf.broker_url = (False,
                                                                     f"redis://127.0.0.1:{hung.port}/1")
    queue._drop_producer()
    with override_settings(CACHES={"default": cache}, API_RATE_LIMIT="100000/min"):
        yield hung
    queue._drop_producer()
    celery_app.conf.task_always_eager, celery_app.conf.broker_url = eager, broker


@pytest.fixture
def shop(db):
    customer = Customer.objects.create(email="hung@example.com", first_name="Hung",
                                       last_name="Redis")
    product = Product.objects.create(sku="HUNG-1", name="Hung widget", price=Decimal("5.00"))
    location = inventory_services.location_create(code="MAIN", name="Main", priority=0)
    inventory_services.stock_receive(product_id=product.id, location_id=location.id, quantity=100,
                                     reason="test")
    # kicks go out
    webhook_services.endpoint_create(url="https://hooks.example.com/in", events=["*"])
    return customer, product


def timed(call):
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def test_every_endpoint_stays_under_a_second_and_redis_costs_one_timeout(hung_redis, shop, client,
                                                                         caplog):
    caplog.set_level(logging.INFO, logger="stateset.breaker")
    customer, product = shop
    _, raw = services.api_key_create(name="hung", scopes=["*"])
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=raw)
    body = {"customer_id": str(customer.id),
            "items": [{"product_id": str(product.id), "quantity": 1}]}
    timings = {}
    calls = [
        ("product detail", lambda: api.get(f"/api/v1/products/{product.id}")),
        ("order list", lambda: api.get("/api/v1/orders")),
        ("POST /orders", lambda: api.post("/api/v1/orders", body, format="json",
                                          HTTP_IDEMPOTENCY_KEY=f"hung-{body['items'][0]['quantity']}")),
        ("customer detail", lambda: api.get(f"/api/v1/customers/{customer.id}")),
        ("search", lambda: api.get("/api/v1/products/search", {"q": "widget"})),
        ("product by sku", lambda: api.get("/api/v1/products/by-sku/HUNG-1")),
        ("inventory", lambda: api.get("/api/v1/inventory")),
        ("POST /orders again", lambda: api.post("/api/v1/orders", body, format="json")),
    ]
    # A server whose Redis starts hanging has served before: a first round pays the process's
    # one-time imports and connection set-up (about a second, Redis or not), then the hang begins
    # afresh for the measured round — breakers closed, the key's last_used_at due again.
    for _name, call in calls:
        call()
    redis_breaker.reset()
    broker_breaker.reset()
    key_cache.clear()
    caplog.clear()
    before = len(hung_redis.accepted)
    # a new order, not a replay
    body = {**body, "items": [{"product_id": str(product.id), "quantity": 2}]}
    started = time.perf_counter()
    for name, call in calls:
        response, seconds = timed(call)
        timings[name] = round(seconds, 3)
        assert response.status_code in (200, 201), (name, response.content)
    print("timings with Redis hung (s):", timings)
    slow = {name: seconds for name, seconds in timings.items() if seconds >= 1.0}
    assert not slow, f"over a second with Redis hung: {slow}"
    total = time.perf_counter() - started
    assert total < 3.0, total

    # One timeout opened each breaker; the rest skipped Redis: a handful of connections, not one
    # per cache call (dozens over these requests).
    assert redis_breaker.is_open and broker_breaker.is_open
    assert len(hung_redis.accepted) - before <= 4, len(hung_redis.accepted) - before
    metrics = client.get("/metrics").content.decode()
    assert 'circuit_breaker_open{dependency="redis"} 1.0' in metrics
    assert 'circuit_breaker_trips_total{dependency="redis"}' in metrics
    opened = [r for r in caplog.records if r.getMessage().startswith("circuit open")]
    assert {r.fields["dependency"] for r in opened} == {"redis", "broker"}
    assert len(opened) == 2  # once each, not once per call

    # The requests did what they should, from PostgreSQL: two orders, the key's use recorded later.
    from orders.models import Order

    assert Order.objects.count() == 4  # two per round
    assert ApiKey.objects.filter(name="hung").exists()


def test_the_breaker_closes_again_once_redis_answers(settings):
    from django.core.cache import cache

    if settings.CACHES["default"]["BACKEND"] != "django_redis.cache.RedisCache":
        pytest.skip("needs the Redis cache configuration (REDIS_URL)")
    redis_breaker.failure(TimeoutError("test"))
    assert cache.get("breaker-probe", "skipped") == "skipped"  # open: not even asked
    redis_breaker._open_until = 0.0  # the cooldown is over
    cache.set("breaker-probe", "answered")  # the probe succeeds...
    # ...and it closes
    assert not redis_breaker.is_open and cache.get("breaker-probe") == "answered"
