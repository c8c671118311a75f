"""Every series of SPEC §8 after real traffic, as Prometheus scrapes them: two gunicorn workers
behind one ``/metrics`` (multiprocess mode), and a Celery worker (two pool processes) consuming the
Redis broker and serving its own series on ``[celery] metrics_port``."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stateset import services
from stateset.cache import TOMBSTONE_SECONDS
from stateset.tests.system.servers import (
    api_caller,
    app_env,
    database_url,
    free_port,
    start_gunicorn,
    start_worker,
    stop,
    wait_http,
)

BROKER = os.environ.get("CELERY_TEST_BROKER_URL") or (
    os.environ.get("REDIS_URL", "").rsplit("/", 1)[0] + "/2" if os.environ.get("REDIS_URL") else "")
pytestmark = [
    pytest.mark.skipif(not BROKER or not os.environ.get("REDIS_URL"),
                       reason="needs Redis (REDIS_URL) for the shared cache and the Celery broker"),
    pytest.mark.django_db(transaction=True),
]

# SPEC §8's series and the labels each must carry (the guide's, then the project's).
API_SERIES = {
    "http_requests_total": {"method", "route", "status"},
    "http_request_duration_seconds_bucket": {"method", "route", "le"},
    "database_connections": {"state"},
    "database_pool_max_connections": set(),
    "database_pool_requests_waiting": set(),
    "cache_hits_total": {"entity"},
    "cache_misses_total": {"entity"},
    "orders_created_total": set(),
    "inventory_reservations_total": {"result"},
    "process_cpu_seconds_total": {"pid"},
    "process_resident_memory_bytes": {"pid"},
    "machine_cpu_cores": set(),
}
WORKER_SERIES = {
    "webhook_deliveries_total": {"result"},
    "celery_tasks_total": {"task", "state"},
    "database_connections": {"state"},
    "process_cpu_seconds_total": {"pid"},
    "process_resident_memory_bytes": {"pid"},
    "machine_cpu_cores": set(),
}


def scrape(url: str) -> dict[str, list]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, [])
               if all(s.labels.get(k) == v for k, v in labels.items()))


def test_every_series_appears_with_its_labels_after_real_traffic(tmp_path):
    from django.db import connection

    from webhooks.models import Delivery
    from webhooks.tests.test_webhooks import Receiver

    key = services.api_key_create(name="metrics", scopes=["*"])[1]
    api_port, worker_port = free_port(), free_port()
    env = app_env(database_url(connection.settings_dict), STATESET__CELERY__BROKER_URL=BROKER,
                  STATESET__CELERY__ALWAYS_EAGER="false")
    _purge(BROKER)
    worker = start_worker(dict(env, STATESET__CELERY__METRICS_PORT=str(worker_port)), concurrency=2)
    api = start_gunicorn(dict(env, PROMETHEUS_MULTIPROC_DIR=str(tmp_path)), api_port, workers=2)
    receiver = Receiver()
    try:
        wait_http(f"http://127.0.0.1:{worker_port}/metrics", worker)
        call = api_caller(f"http://127.0.0.1:{api_port}/api/v1", key)
        # The endpoint first: a worker that published an event before it existed remembers "no
        # subscriber" for up to 10 s (webhooks.services.subscriptions), and without beat here
        # nothing would pump its orders' events later.
        call("POST", "/webhooks", {"url": receiver.url, "events": ["order.created"]})
        # Read at the end: a write leaves a tombstone that keeps its key out of the cache for a
        # while.
        readable = call("POST", "/products",
                        {"sku": "MET-READ", "name": "Read", "price": "1.00"})[1]
        readable_at = time.monotonic()
        product = call("POST", "/products",
                       {"sku": "MET-1", "name": "Measured", "price": "3.00"})[1]
        customer = call("POST", "/customers", {"email": "met@example.com"})[1]
        location = call("POST", "/locations", {"code": "MET", "name": "Metrics"})[1]
        call("POST", "/inventory/receive",
             {"product_id": product["id"], "location_id": location["id"],
                                            "quantity": 5})
        for n in range(3):
            status, _ = call("POST", "/orders", {"customer_id": customer["id"],
                                                 "items": [{"product_id": product["id"],
                                                            "quantity": 1}]},
                             {"Idempotency-Key": f"met-{n}"})
            assert status == 201
        # more than is left: a refused reservation
        with pytest.raises(AssertionError, match="409|422"):
            call("POST", "/inventory/reserve",
                 {"items": [{"product_id": product["id"], "quantity": 50}],
                                                "reference_type": "test",
                  "reference_id": "too-many"})
        deadline = time.monotonic() + 60
        while Delivery.objects.filter(status="succeeded").count() < 3:
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the worker did not deliver the three webhooks"
            time.sleep(0.3)
        time.sleep(max(0.0, readable_at + TOMBSTONE_SECONDS + 0.5 - time.monotonic()))
        for _ in range(4):  # a miss, then hits, in whichever worker answers
            call("GET", f"/products/{readable['id']}")

        api_samples = scrape(f"http://127.0.0.1:{api_port}/metrics")
        worker_samples = _scrape_until(f"http://127.0.0.1:{worker_port}/metrics",
                                       lambda s: value(s, "webhook_deliveries_total",
                                                       result="success") >= 3)
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics/json",
                                    timeout=10) as response:
            as_json = json.loads(response.read())["metrics"]
    finally:
        receiver.close()
        stop(api)
        stop(worker)

    for name, labels in API_SERIES.items():
        assert name in api_samples, f"/metrics lacks {name}"
        assert all(labels <= set(s.labels) for s in api_samples[name]), (name,
                                                                         api_samples[name][:2])
    for name, labels in WORKER_SERIES.items():
        assert name in worker_samples, f"the worker's metrics lack {name}"
        assert all(labels <= set(s.labels) for s in worker_samples[name]), (name,
                                                                            worker_samples[name][
                                                                                :2])

    # The numbers are the traffic's, summed over both gunicorn workers and both pool processes.
    assert value(api_samples, "orders_created_total") == 3
    assert value(api_samples, "http_requests_total", method="POST", route="/api/v1/orders",
                 status="201") == 3
    # route is the URL pattern, DRF router patterns included, never the raw path
    assert value(api_samples, "http_request_duration_seconds_count", method="GET",
                 route="/api/v1/products/{pk}") == 4
    assert not any(product["id"] in s.labels["route"] or "(?P" in s.labels["route"]
                   for s in api_samples["http_requests_total"])
    assert value(api_samples, "cache_misses_total", entity="products") >= 1
    assert value(api_samples, "cache_hits_total", entity="products") >= 2
    assert value(api_samples, "inventory_reservations_total", result="reserved") == 3
    assert value(api_samples, "inventory_reservations_total", result="insufficient_stock") == 1
    assert value(api_samples, "database_pool_max_connections") > 0
    # master + 2
    assert len({s.labels["pid"] for s in api_samples["process_cpu_seconds_total"]}) == 3
    assert all(s.value > 10_000_000 for s in api_samples["process_resident_memory_bytes"])
    assert value(worker_samples, "webhook_deliveries_total", result="success") == 3
    assert value(worker_samples, "celery_tasks_total", task="webhooks.tasks.webhooks_deliver",
                 state="SUCCESS") == 3
    assert value(worker_samples, "celery_tasks_total", task="webhooks.tasks.webhooks_dispatch",
                 state="SUCCESS") >= 1
    # main + 2
    assert len({s.labels["pid"] for s in worker_samples["process_cpu_seconds_total"]}) >= 3
    # /metrics/json carries the same families.
    for name in ("http_requests", "http_request_duration_seconds", "database_connections",
                 "cache_hits",
                 "cache_misses", "orders_created", "inventory_reservations", "process_cpu_seconds",
                 "process_resident_memory_bytes"):
        assert name in as_json, f"/metrics/json lacks {name}"


def _scrape_until(url: str, ready, seconds: float = 15) -> dict[str, list]:
    deadline = time.monotonic() + seconds
    while True:
        samples = scrape(url)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.3)


def _purge(broker: str) -> None:
    from kombu import Connection

    with Connection(broker) as conn:
        try:
            conn.default_channel.queue_purge("celery")  # type: ignore[attr-defined]
        except Exception:  # no such queue yet
            pass

