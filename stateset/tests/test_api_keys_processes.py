"""API keys across processes and across the migration: revoking or rotating a key takes effect at
once in every process, whatever each has cached; the cache is not used when its generation cannot
be read; keys hashed before keyed hashing still authenticate after the migration."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from stateset import services
from stateset.keys import HMAC_SHA256, SHA256, generation, hash_key, key_cache, principal_for_key
from stateset.models import ApiKey
from stateset.testing import client_for

ROOT = Path(__file__).resolve().parents[2]
needs_redis = pytest.mark.skipif(settings.API_KEY_CACHE != "redis",
                                 reason="processes share the keys' generation through Redis: set "
                                        "REDIS_URL")


def database_url() -> str:
    s = connection.settings_dict
    host = s["HOST"] or "localhost"
    if host.startswith("/"):
        return f"postgresql://{s['USER']}@/{s['NAME']}?host={host}"
    return f"postgresql://{s['USER']}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    """One more Django process on the same database and Redis (stateset/tests/key_worker.py)."""

    def __init__(self) -> None:
        env = dict(os.environ, DATABASE_URL=database_url(), STATESET_ENV="test",
                   LOG_LEVEL="WARNING")
        self.process = subprocess.Popen([sys.executable, "-m", "stateset.tests.key_worker"],
                                        cwd=ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        assert "ready" in self._read()

    def _read(self) -> dict:
        line = self.stdout.readline()
        assert line, "the worker process died"
        return json.loads(line)

    def request(self, method: str, path: str, key: str, body: dict | None = None) -> dict:
        self.stdin.write(
            json.dumps({"method": method, "path": path, "key": key, "body": body}) + "\n")
        self.stdin.flush()
        return self._read()

    def get_orders(self, key: str) -> dict:
        return self.request("get", "/api/v1/orders", key)

    def close(self) -> None:
        self.stdin.close()
        self.process.wait(20)


@pytest.fixture
def workers():
    started = [Worker(), Worker()]
    yield started
    for worker in started:
        worker.close()


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_revocation_and_rotation_take_effect_at_once_in_every_process(workers):
    a, b = workers
    _, admin = services.api_key_create(name="admin", scopes=["*"])
    victim_row, victim = services.api_key_create(name="victim", scopes=["orders:read"])
    rotating_row, rotating = services.api_key_create(name="rotating", scopes=["orders:read"])

    # Both processes authenticate both keys, then serve them from their own cache (no key read).
    for worker in (a, b):
        for raw in (victim, rotating, admin):
            first, second = worker.get_orders(raw), worker.get_orders(raw)
            assert (first["status"], first["key_reads"]) == (200, 1)
            assert (second["status"], second["key_reads"]) == (200, 0)

    # Revoked over the API in A: B (and A) refuse the key on the very next request.
    assert a.request("delete", f"/api/v1/api-keys/{victim_row.pk}", admin)["status"] == 204
    assert b.get_orders(victim)["status"] == 401
    assert a.get_orders(victim)["status"] == 401

    # Rotated over the API in B without grace: the old secret stops in A at once, the new one works.
    rotated = b.request("post", f"/api/v1/api-keys/{rotating_row.pk}/rotate", admin, {})
    assert rotated["status"] == 200
    assert a.get_orders(rotating)["status"] == 401
    assert a.get_orders(rotated["data"]["key"])["status"] == 200

    # Revoked by a third process (this one, through the service): both workers follow.
    for worker in (a, b):  # the rotation's bump dropped their caches: warm them again
        worker.get_orders(admin)
        assert worker.get_orders(admin)["key_reads"] == 0
    services.api_key_revoke(api_key_id=ApiKey.objects.get(name="admin").pk)
    assert a.get_orders(admin)["status"] == 401 and b.get_orders(admin)["status"] == 401


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_rotated_secret_stops_after_its_grace_in_every_process(workers):
    a, b = workers
    row, old = services.api_key_create(name="graced", scopes=["orders:read"])
    for worker in (a, b):
        worker.get_orders(old)
        cached = worker.get_orders(old)
        assert (cached["status"], cached["key_reads"]) == (200, 0)
    started = time.monotonic()
    _, new = services.api_key_rotate(api_key_id=row.pk, grace_seconds=2)
    assert a.get_orders(old)["status"] == 200 and b.get_orders(old)["status"] == 200
    b.get_orders(old)  # cached again in B, with its grace period
    time.sleep(max(0.0, 2.3 - (time.monotonic() - started)))
    assert b.get_orders(old)["status"] == 401 and a.get_orders(old)["status"] == 401
    assert b.get_orders(new)["status"] == 200 and a.get_orders(new)["status"] == 200


@needs_redis
@pytest.mark.django_db
def test_a_lost_generation_drops_the_cache(django_assert_num_queries):
    _, raw = services.api_key_create(name="k", scopes=["orders:read"])
    assert principal_for_key(raw) is not None
    with django_assert_num_queries(0):
        assert principal_for_key(raw) is not None
    client, key = generation._redis()
    client.delete(key)  # Redis restarted empty: a fresh token, never an old one
    with django_assert_num_queries(1):
        assert principal_for_key(raw) is not None


@pytest.mark.django_db
def test_without_a_readable_generation_nothing_is_cached(settings, monkeypatch,
                                                         django_assert_num_queries,
                                                          caplog):
    settings.API_KEY_CACHE = "redis"
    calls = []

    def down():
        calls.append(1)
        raise ConnectionError("redis is down")

    monkeypatch.setattr(generation, "_redis", down)
    monkeypatch.setattr(generation, "_skip_until", 0.0)
    row, raw = services.api_key_create(name="k", scopes=["orders:read"])  # its bump fails, logged
    assert "not bumped" in caplog.text
    for _ in range(3):
        with django_assert_num_queries(1):  # every request reads the key from PostgreSQL
            assert principal_for_key(raw) is not None
    assert len(calls) == 2  # the create's bump, then one read: the breaker skips Redis afterwards
    services.api_key_revoke(api_key_id=row.pk)
    assert principal_for_key(raw) is None
    assert error_of_orders(raw) == 401


def error_of_orders(raw: str) -> int:
    return client_for(raw).get("/api/v1/orders").status_code


@pytest.mark.django_db(transaction=True)
def test_keys_made_before_the_migration_still_authenticate():
    from django.db.migrations.executor import MigrationExecutor

    raw = "sk_made_before_keyed_hashing_000000000000"
    executor = MigrationExecutor(connection)
    executor.migrate([("stateset", "0001_initial")])
    try:
        old_apps = executor.loader.project_state([("stateset", "0001_initial")]).apps
        old_apps.get_model("stateset", "ApiKey").objects.create(
            name="old", prefix=raw[:10], key_hash=hashlib.sha256(raw.encode()).hexdigest(),
            scopes=["orders:read"])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    row = ApiKey.objects.get(name="old")
    assert row.hash_scheme == SHA256
    key_cache.clear()
    assert error_of_orders(raw) == 200
    row.refresh_from_db()
    assert (row.hash_scheme, row.key_hash) == (HMAC_SHA256, hash_key(raw))  # re-hashed on first use
    key_cache.clear()
    assert error_of_orders(raw) == 200
    assert client_for(raw).get("/api/v1/customers").status_code == 403
