"""Read replicas against a real streaming standby (SPEC §2, §10): a second PostgreSQL server made
with ``pg_basebackup`` from the test server, attached as ``replica_1`` while these tests run.

Pausing WAL replay on the standby (``pg_wal_replay_pause``) freezes what it answers, so a read shows
where it ran: a row written on the primary after the pause exists there and not on the standby.
"""

from __future__ import annotations

import contextlib
import time
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.http import JsonResponse
from django.test.utils import CaptureQueriesContext
from django.urls import path
from rest_framework.test import APIClient

from catalog import services as catalog_services
from catalog.models import Product
from catalog.selectors import product_cache
from stateset import services
from stateset.celery import app as celery_app
from stateset.db import replica_health
from stateset.settings import database_from_url
from stateset.testing import data_of
from stateset.tests.system.servers import Standby, database_url
from stateset.urls import urlpatterns as project_urlpatterns

ALIAS = "replica_1"
# A mirror of "default" for Django's test machinery: allowed in these tests, never flushed.
pytestmark = [pytest.mark.django_db(transaction=True, databases=["default", ALIAS])]


# --- a GET that writes, and a task that writes (read-your-writes within one request / task) ------


def _write_then_read(sku: str) -> dict[str, object]:
    catalog_services.product_create(sku=sku, name="Written", price=Decimal("1.00"))
    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        found = Product.objects.filter(sku=sku).exists()
    return {"found": found, "replica_queries": len(on_replica)}


def write_then_read_view(request):
    return JsonResponse(_write_then_read(request.GET["name"]))


@celery_app.task(name="stateset.tests.write_then_read")
def write_then_read_task(name: str) -> dict[str, object]:
    return _write_then_read(name)


urlpatterns = [path("_test/write-then-read", write_then_read_view), *project_urlpatterns]


# --- the standby ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def standby(django_db_setup, django_db_blocker):
    primary = dict(connections["default"].settings_dict)
    server = Standby(primary)
    reason = server.why_not()
    if reason:
        pytest.skip(f"no streaming standby: {reason}")
    with django_db_blocker.unblock():
        try:
            server.start()
        except RuntimeError as exc:  # pg_basebackup or pg_ctl said why
            server.remove()
            pytest.skip(f"no streaming standby: {exc}")
        except BaseException:
            server.remove()
            raise
        replica = database_from_url(database_url(server.settings_dict()), key="test replica",
                                    replica=True)
        replica["TEST"] = {"MIRROR": "default"}
        connections.configure_settings({"default": settings.DATABASES["default"], ALIAS: replica})
        settings.DATABASES[ALIAS] = replica
        try:
            yield server
        finally:
            with contextlib.suppress(Exception):
                connections[ALIAS].close()
                connections[ALIAS].close_pool()
            del connections[ALIAS]
            del settings.DATABASES[ALIAS]
            replica_health.forget()
            server.remove()


@pytest.fixture
def replica(standby, settings):
    """The standby attached and caught up, replay running, health memo empty; and afterwards."""
    settings.READ_PREFERENCE = "round_robin"
    settings.MAX_REPLICA_LAG = 5
    standby.resume()
    standby.wait_caught_up()
    replica_health.forget()
    yield standby
    standby.resume()
    connections[ALIAS].close()


@pytest.fixture
def reader(api):
    """An API client whose key has been used once: a key's first use records it (a write, so that
    request reads the primary from then on, as it should)."""
    data_of(api.get("/api/v1/products?limit=1"))
    return api


def queries_on(*aliases: str) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.captured = {alias: stack.enter_context(CaptureQueriesContext(connections[alias]))  # type: ignore[attr-defined]
                      for alias in aliases}
    return stack


def product_names(api) -> dict[str, str]:
    body = data_of(api.get("/api/v1/products?limit=100"))
    return {row["sku"]: row["name"] for row in body["items"]}


def test_reads_land_on_the_standby_and_writes_on_the_primary(replica, reader, monkeypatch):
    catalog_services.product_create(sku="REP-1", name="Before", price=Decimal("1.00"))
    replica.wait_caught_up()
    replica.pause()
    product = catalog_services.product_create(sku="REP-2", name="After the pause",
                                              price=Decimal("2.00"))
    checks = []
    monkeypatch.setattr(replica_health, "check", _counting(replica_health.check, checks))
    replica_health.forget()  # the fixture's own reads may have checked it less than a second ago

    with queries_on("default", ALIAS) as seen:
        names = product_names(reader)
        for _ in range(20):
            product_names(reader)
    # The list ran on the standby, which stopped replaying before REP-2 was written.
    assert names == {"REP-1": "Before"}
    assert len(seen.captured[ALIAS]) >= 21
    assert not any("catalog_product" in q["sql"] for q in seen.captured["default"].captured_queries)
    assert len(checks) == 1, "the health memo answers 21 requests with one check"

    with queries_on("default", ALIAS) as seen:
        response = reader.patch(f"/api/v1/products/{product.id}", {"name": "Renamed"},
                                format="json",
                             HTTP_IF_MATCH=f'"{product.version}"')
    assert response.status_code == 200, response.content
    assert any(q["sql"].startswith("UPDATE") for q in seen.captured["default"].captured_queries)
    assert not seen.captured[
        ALIAS].captured_queries, "an unsafe request reads and writes on the primary"


def test_a_read_after_a_write_in_the_same_request_goes_to_the_primary(replica):
    replica.pause()
    # Without a request scope, a read right after a write goes to the (paused) standby ...
    catalog_services.product_create(sku="OUTSIDE", name="Written", price=Decimal("1.00"))
    assert not Product.objects.filter(sku="OUTSIDE").exists()
    # ... inside one, the GET's write sends its later reads to the primary.
    response = _get_with_urls("/_test/write-then-read?name=INSIDE")
    assert response == {"found": True, "replica_queries": 0}


def test_a_read_after_a_write_in_the_same_task_goes_to_the_primary(replica):
    replica.pause()
    result = write_then_read_task.apply(args=["IN-A-TASK"]).get()
    assert result == {"found": True, "replica_queries": 0}
    # Outside the task, a read goes to the standby: the row above is not there yet.
    assert not Product.objects.filter(sku="IN-A-TASK").exists()


def test_a_key_made_a_moment_ago_works_while_the_standby_lags(replica):
    replica.pause()
    raw = services.api_key_create(name="brand-new", scopes=["catalog:read"])[1]
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    assert client.get("/api/v1/products?limit=1").status_code == 200


def test_reads_inside_a_write_transaction_go_to_the_primary(replica):
    replica.pause()
    with transaction.atomic():
        catalog_services.product_create(sku="IN-TX", name="Written", price=Decimal("1.00"))
        with CaptureQueriesContext(connections[ALIAS]) as on_replica:
            assert Product.objects.filter(sku="IN-TX").exists()
    assert not on_replica.captured_queries


def test_a_stopped_standby_is_skipped_and_reads_fall_back_to_the_primary(replica, reader):
    catalog_services.product_create(sku="DOWN-1", name="Served anyway", price=Decimal("1.00"))
    replica.wait_caught_up()
    replica.stop()
    try:
        replica_health.forget()
        started = time.monotonic()
        assert product_names(reader) == {"DOWN-1": "Served anyway"}
        assert time.monotonic() - started < 5, (
            "a down replica costs one short check, not a pool timeout")
        state = replica_health.state(ALIAS)
        assert state is not None and not state.usable and state.reason.startswith("down")
        for _ in range(5):
            assert product_names(reader) == {"DOWN-1": "Served anyway"}
    finally:
        replica.run_ctl("start", "-l", str(replica.directory / "standby.log"))
    # Back up: after the memo expires, reads return to it (on a new connection: the test client
    # keeps this thread's connection between requests, where gunicorn would give it back to the
    # pool, whose check replaces a dead one).
    connections[ALIAS].close()
    replica.wait_caught_up()
    time.sleep(replica_health.ttl)
    with queries_on(ALIAS) as seen:
        product_names(reader)
    assert seen.captured[ALIAS].captured_queries


def test_a_lagging_standby_is_skipped_and_never_poisons_the_cache(replica, reader, settings):
    product = catalog_services.product_create(sku="LAG-1", name="Old name", price=Decimal("1.00"))
    replica.wait_caught_up()
    replica.pause()
    catalog_services.product_update(product_id=product.id, fields={"name": "New name"})
    _clear_cache()  # the invalidation's tombstones gone: the next read may fill the cache

    # Within the tolerated lag the standby serves the list, one write behind ...
    settings.MAX_REPLICA_LAG = 3600
    replica_health.forget()
    assert product_names(reader) == {"LAG-1": "Old name"}
    # ... but what the cache stores is read on the primary, so the detail is current and stays so.
    with queries_on("default", ALIAS) as seen:
        assert data_of(reader.get(f"/api/v1/products/{product.id}"))["name"] == "New name"
    assert not seen.captured[ALIAS].captured_queries
    assert cache.get(product_cache.key(product.id))["name"] == "New name"
    for _ in range(3):
        assert data_of(reader.get(f"/api/v1/products/{product.id}"))["name"] == "New name"

    # Past max_replica_lag the standby is skipped: the list is read on the primary.
    settings.MAX_REPLICA_LAG = 1
    deadline = time.monotonic() + 15
    while replica_health.check(ALIAS).usable:
        assert time.monotonic() < deadline, "the paused standby never counted as lagging"
        time.sleep(0.2)
    state = replica_health.state(ALIAS)
    assert state is not None and state.reason.startswith("lagging")
    with queries_on(ALIAS) as seen:
        assert product_names(reader) == {"LAG-1": "New name"}
    assert not seen.captured[ALIAS].captured_queries

    replica.resume()
    replica.wait_caught_up()
    replica_health.forget()
    assert product_names(reader) == {"LAG-1": "New name"}


def test_read_preference_primary_keeps_every_read_on_the_primary(replica, reader, settings):
    settings.READ_PREFERENCE = "primary"
    with queries_on(ALIAS) as seen:
        product_names(reader)
    assert not seen.captured[ALIAS].captured_queries


def test_readiness_reports_the_replica_without_failing_on_it(replica, client):
    body = client.get("/health/ready").json()
    assert body["components"][ALIAS]["status"] == "ok" and body["components"][ALIAS][
        "required"] is False
    replica.stop()
    try:
        replica_health.forget()
        response = client.get("/health/ready")
        assert response.status_code == 200
        assert response.json()["components"][ALIAS]["status"] == "down"
    finally:
        replica.run_ctl("start", "-l", str(replica.directory / "standby.log"))
        connections[ALIAS].close()


# --- helpers -------------------------------------------------------------------------------------


def _counting(function, calls: list):
    def counted(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    return counted


def _get_with_urls(url: str) -> dict:
    from django.test import Client, override_settings

    with override_settings(ROOT_URLCONF=__name__):
        response = Client().get(url)
    assert response.status_code == 200, response.content
    return response.json()


def _clear_cache() -> None:
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()
