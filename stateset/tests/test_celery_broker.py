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
from django.db import connection

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


@pytest.mark.skipif(not BROKER, reason="needs a Redis broker: set REDIS_URL or CELERY_TEST_BROKER_URL")
@pytest.mark.django_db(transaction=True)
def test_a_worker_consumes_a_task_from_the_redis_broker(make_key):
    make_key("*", name="touched-by-worker")
    key = ApiKey.objects.get(name="touched-by-worker")
    assert key.last_used_at is None
    env = dict(os.environ, DATABASE_URL=_database_url(), STATESET__CELERY__BROKER_URL=BROKER,
               STATESET__CELERY__ALWAYS_EAGER="false", STATESET_ENV="test")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "stateset", "worker", "-P", "solo", "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", "stateset-test"],
        env=env, cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        producer = Celery(broker=BROKER)
        at = datetime.now(UTC) - timedelta(seconds=5)
        producer.send_task("stateset.tasks.api_key_touch", args=[str(key.id), at.isoformat()], queue="stateset-test")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            key.refresh_from_db()
            if key.last_used_at is not None:
                break
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            time.sleep(0.3)
        assert key.last_used_at is not None and abs((key.last_used_at - at).total_seconds()) < 1
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
