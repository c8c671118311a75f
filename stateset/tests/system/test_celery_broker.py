"""Celery with a real broker: a worker process consumes a task sent through Redis and writes to the
same database the test reads (SPEC: real parts)."""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from celery import Celery
from django.db import connection, transaction

from stateset.models import ApiKey

BROKER = os.environ.get("CELERY_TEST_BROKER_URL") or (
    os.environ.get("REDIS_URL", "").rsplit("/", 1)[0] + "/2" if os.environ.get("REDIS_URL") else ""
)


def _database_url() -> str:
    s = connection.settings_dict
    host = s["HOST"] or "localhost"
    auth = quote(s["USER"]) + (":" + quote(s["PASSWORD"]) if s["PASSWORD"] else "")
    if host.startswith("/"):
        return f"postgresql://{auth}@/{s['NAME']}?host={host}"
    return f"postgresql://{auth}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


needs_broker = pytest.mark.skipif(not BROKER,
                                  reason="needs a Redis broker: set REDIS_URL or "
                                         "CELERY_TEST_BROKER_URL")


@pytest.fixture
def worker_env():
    """Extra environment of the worker process (a test sets it before asking for ``worker``)."""
    return {}


@pytest.fixture
def worker(worker_env):
    """A Celery worker process on the test database and the Redis broker; it consumes the test queue
    and the default one (where tasks queue their follow-up tasks)."""
    env = dict(os.environ, DATABASE_URL=_database_url(), STATESET__CELERY__BROKER_URL=BROKER,
               STATESET__CELERY__ALWAYS_EAGER="false", STATESET_ENV="test", **worker_env)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "stateset", "worker", "-P", "solo", "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q",
         "stateset-test,celery"],
        env=env, cwd=Path(__file__).resolve().parents[3], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield process
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_for(condition, worker, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
        time.sleep(0.3)
    raise AssertionError("the worker did not do it in time")


def send(task: str, *args: str) -> None:
    Celery(broker=BROKER).send_task(task, args=list(args), queue="stateset-test")


@needs_broker
@pytest.mark.django_db(transaction=True)
def test_a_worker_consumes_a_task_from_the_redis_broker(make_key, worker):
    make_key("*", name="touched-by-worker")
    key = ApiKey.objects.get(name="touched-by-worker")
    assert key.last_used_at is None
    at = datetime.now(UTC) - timedelta(seconds=5)
    send("stateset.tasks.api_key_touch", str(key.id), at.isoformat())

    def touched() -> bool:
        key.refresh_from_db()
        return key.last_used_at is not None

    wait_for(touched, worker)
    assert abs((key.last_used_at - at).total_seconds()) < 1


@needs_broker
@pytest.mark.django_db(transaction=True)
def test_the_worker_dispatches_the_outbox_and_delivers_the_webhook(worker, monkeypatch):
    from webhooks import services
    from webhooks.models import Delivery, Event
    from webhooks.tests.test_webhooks import Receiver, verify

    # Tasks run eagerly in the test process: without this, publishing would deliver right here.
    monkeypatch.setattr(services, "_kick", lambda event_type: None)
    receiver = Receiver()
    try:
        endpoint = services.endpoint_create(url=receiver.url, events=["order.created"])
        with transaction.atomic():
            services.publish(event_type="order.created", payload={"order_number": "ORD-424242"})
        # dispatch in the worker, which queues the delivery task
        send("webhooks.tasks.webhooks_pump")
        wait_for(lambda: Delivery.objects.filter(status="succeeded").exists(), worker)
    finally:
        receiver.close()
    headers, body = receiver.requests[0]
    assert len(receiver.requests) == 1 and verify(endpoint.secret, headers, body)
    assert headers["StateSet-Event-Id"] == str(Event.objects.get().id)


@needs_broker
@pytest.mark.django_db(transaction=True)
def test_a_failed_delivery_is_retried_after_its_backoff_without_the_pump(worker_env, request,
                                                                         monkeypatch):
    from webhooks import services
    from webhooks.models import Delivery
    from webhooks.tests.test_webhooks import Receiver

    worker_env["STATESET__WEBHOOKS__BACKOFF_SECONDS"] = "2"
    worker = request.getfixturevalue("worker")
    monkeypatch.setattr(services, "_kick", lambda event_type: None)
    receiver = Receiver()
    receiver.statuses = [500, 200]
    try:
        services.endpoint_create(url=receiver.url, events=["order.created"])
        with transaction.atomic():
            services.publish(event_type="order.created", payload={"order_number": "ORD-424243"})
        send("webhooks.tasks.webhooks_pump")  # the only pump: the retry is the worker's own
        wait_for(lambda: Delivery.objects.filter(status="succeeded").exists(), worker, seconds=30)
    finally:
        receiver.close()
    delivery = Delivery.objects.get()
    assert (delivery.attempts, len(receiver.requests)) == (2, 2)
    assert delivery.next_attempt_at <= delivery.delivered_at  # no lease left standing
    first, second = receiver.times[:2]
    assert second - first >= 1.9  # waited for its backoff (2 s after the first attempt)
