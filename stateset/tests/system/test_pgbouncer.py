"""Behind PgBouncer in transaction mode (SPEC §2): Debian's pgbouncer, started here on a free port
in front of the test database with fewer server connections than the app opens, so every transaction
may land on a different server connection."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import connections

from orders.models import Order
from stateset import services
from stateset.settings import database_from_url
from stateset.tests.system.servers import (
    ROOT,
    PgBouncer,
    api_caller,
    app_env,
    database_url,
    free_port,
    start_gunicorn,
    stop,
)

POOL_SIZE = 2  # server connections PgBouncer keeps per database/user pair


@pytest.fixture
def pgbouncer(transactional_db):
    reason = PgBouncer.why_not()
    if reason:
        pytest.skip(reason)
    bouncer = PgBouncer(dict(connections["default"].settings_dict), pool_size=POOL_SIZE)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.remove()


def test_pgbouncer_mode_turns_off_what_transaction_pooling_breaks():
    direct = database_from_url("postgres://u@db/app")
    assert direct["OPTIONS"]["prepare_threshold"] == 5 and direct["OPTIONS"][
        "server_side_binding"] is True
    assert direct["DISABLE_SERVER_SIDE_CURSORS"] is False
    bounced = database_from_url("postgres://u@bouncer:6432/app", pgbouncer=True)
    assert bounced["OPTIONS"]["prepare_threshold"] is None
    assert bounced["OPTIONS"]["server_side_binding"] is False
    assert bounced["DISABLE_SERVER_SIDE_CURSORS"] is True


def test_the_config_key_reaches_the_settings_and_doctor_reports_the_mode():
    code = ("import django; django.setup(); from django.conf import settings; "
            "o = settings.DATABASES['default']['OPTIONS']; print(settings.PGBOUNCER, "
            "o['prepare_threshold'], "
            "settings.DATABASES['default']['DISABLE_SERVER_SIDE_CURSORS'])")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="stateset.settings",
               STATESET__DATABASE__PGBOUNCER="true")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["True", "None", "True"]


@pytest.mark.django_db
def test_doctor_reports_the_pgbouncer_mode(capsys, settings):
    from django.core.management import call_command

    def doctor() -> str:
        with contextlib.suppress(SystemExit):  # its verdict on the rest of the test database
            call_command("doctor")
        return capsys.readouterr().out

    settings.PGBOUNCER = True
    assert "[ok] pgbouncer: on: transaction pooling" in doctor()
    settings.PGBOUNCER = False
    assert "[ok] pgbouncer: off: direct connections" in doctor()


def test_prepared_statements_collide_through_pgbouncer_which_is_why_they_are_off(pgbouncer):
    """The failure the setting prevents: two clients sharing PgBouncer's one server connection
    both prepare psycopg's first statement name on it."""
    params = {"host": "127.0.0.1", "port": pgbouncer.port, "dbname": pgbouncer.primary["NAME"],
              "user": pgbouncer.primary["USER"], "autocommit": True}
    with psycopg.connect(**params, prepare_threshold=0) as first, \
            psycopg.connect(**params, prepare_threshold=0) as second:
        first.execute("SELECT 1").fetchone()
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            for _ in range(POOL_SIZE + 1):  # some turn lands on the server connection `first` used
                second.execute("SELECT 1").fetchone()
    with psycopg.connect(**params, prepare_threshold=None) as first, \
            psycopg.connect(**params, prepare_threshold=None) as second:
        for _ in range(20):
            assert first.execute("SELECT 1").fetchone() == (1,)
            assert second.execute("SELECT 2").fetchone() == (2,)


def test_the_api_smoke_set_passes_through_pgbouncer_in_transaction_mode(pgbouncer):
    key = services.api_key_create(name="through-pgbouncer", scopes=["*"])[1]
    port = free_port()
    env = app_env(database_url(pgbouncer.settings_dict()), STATESET__DATABASE__PGBOUNCER="true",
                  GUNICORN_THREADS="4", STATESET__DATABASE__MIN_CONNECTIONS="0")
    server = start_gunicorn(env, port, workers=2)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        call = api_caller(base, key)
        product = call("POST", "/products",
                       {"sku": "PGB-1", "name": "Bounced", "price": "12.50"})[1]
        customer = call("POST", "/customers", {"email": "pgb@example.com", "first_name": "Pat"})[1]
        location = call("POST", "/locations", {"code": "PGB", "name": "Bouncer"})[1]
        stock = call("POST", "/inventory/receive",
                     {"product_id": product["id"], "location_id": location["id"],
                                                    "quantity": 100})[1]
        assert stock["on_hand"] == 100
        body = {"customer_id": customer["id"],
                "items": [{"product_id": product["id"], "quantity": 2}]}
        idempotency = str(uuid.uuid4())
        status, first = call("POST", "/orders", body, {"Idempotency-Key": idempotency})
        assert status == 201
        status, again = call("POST", "/orders", body, {"Idempotency-Key": idempotency})
        assert status == 201 and again["id"] == first[
            "id"], "the retry is answered from the stored response"

        # Concurrent traffic: more client connections than PgBouncer's two server connections, and
        # every statement repeated past psycopg's prepare threshold (5) on each connection.
        def work(i: int) -> int:
            if i % 4 == 0:
                return call("POST", "/orders", body, {"Idempotency-Key": str(uuid.uuid4())})[0]
            if i % 4 == 1:
                return call("GET", f"/products/{product['id']}")[0]
            return call("GET", "/orders?limit=20")[0]

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(work, range(80)))
        assert set(statuses) <= {200, 201}, statuses
        listed = call("GET", "/orders?limit=100")[1]
        assert listed["total"] == 1 + statuses.count(201)
        assert Order.objects.count() == listed["total"]
        pools = [row for row in pgbouncer.show("POOLS")
                 if row["database"] == pgbouncer.primary["NAME"]]
        clients = [row for row in pgbouncer.show("CLIENTS")
                   if row["database"] == pgbouncer.primary["NAME"]]
        servers = [row for row in pgbouncer.show("SERVERS")
                   if row["database"] == pgbouncer.primary["NAME"]]
        assert pools and pools[0]["pool_mode"] == "transaction"
        assert len(servers) <= POOL_SIZE < len(clients), "clients shared the server connections"
    finally:
        stop(server)
        assert server.returncode is not None
    assert b"Traceback" not in (server.stderr.read() if server.stderr else b"")
