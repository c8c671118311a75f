"""SPEC §10: after a database restart the pool recovers without a process restart. A restart is
modelled by terminating every server process behind the pool's connections (and waiting until
they are gone, as a restart does before it accepts connections again)."""

import time
from unittest import mock

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from stateset.postgresql import base


def terminate_pooled_connections() -> int:
    s = connection.settings_dict
    with psycopg.connect(dbname=s["NAME"], user=s["USER"], host=s["HOST"] or None,
                         port=s["PORT"] or None,
                         password=s["PASSWORD"] or None, autocommit=True) as admin:
        pids = [pid for (pid,) in admin.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'stateset' AND pid <> "
            "pg_backend_pid()").fetchall()]
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)",
                            [pids]).fetchall():
            assert time.monotonic() < deadline, "terminated backends still running"
            time.sleep(0.02)
    return len(pids)


def _idle(pool: ConnectionPool) -> list[psycopg.Connection]:
    return list(pool._pool)  # psycopg_pool's idle connections: what the next checkouts lend


def _counting_checks() -> tuple[list[object], mock._patch]:
    calls: list[object] = []
    original = ConnectionPool.check_connection

    def counted(conn: psycopg.Connection) -> None:
        calls.append(conn)
        original(conn)

    return calls, mock.patch.object(ConnectionPool, "check_connection", staticmethod(counted))


@pytest.mark.django_db(transaction=True)
def test_requests_succeed_after_the_pools_connections_die(api):
    assert api.get("/api/v1/orders").status_code == 200
    connection.close()  # the end of a request: the connection goes back to the pool
    # A busy process has many idle connections. Tried one by one with psycopg_pool's growing
    # back-off (1 s, 2 s, 4 s …), ten dead ones outlast the 30 s checkout timeout: the pool must
    # drain instead.
    pool = connection.pool
    borrowed = [pool.getconn() for _ in range(10)]
    for conn in borrowed:
        pool.putconn(conn)
    assert pool.get_stats()["pool_available"] >= 10

    assert terminate_pooled_connections() >= 10
    response = api.get("/api/v1/orders")
    # the pool checked, drained and reconnected
    assert response.status_code == 200, response.content
    assert api.get("/health/ready").json()["components"]["database"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_a_connection_put_back_a_moment_ago_is_lent_without_the_checks_round_trip():
    connection.ensure_connection()
    connection.close()  # the end of a request: back to the pool, stamped
    pool = connection.pool
    calls, patch = _counting_checks()
    with patch:
        for conn in _idle(pool):  # every idle one as if a request had just put it back
            conn._stateset_returned_at = time.monotonic()
        connection.ensure_connection()
        connection.close()
        assert calls == []

        for conn in _idle(pool):  # idle longer than the quiet window: checked again
            conn._stateset_returned_at = time.monotonic() - base.QUIET_REUSE_SECONDS - 1
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        connection.close()
        assert len(calls) == 1


@pytest.mark.django_db(transaction=True)
def test_a_recently_returned_connection_whose_server_went_away_is_checked_and_drains(api):
    assert api.get("/api/v1/orders").status_code == 200
    connection.close()
    pool = connection.pool
    borrowed = [pool.getconn() for _ in range(5)]
    for conn in borrowed:
        pool.putconn(conn)
    assert terminate_pooled_connections() >= 5
    calls, patch = _counting_checks()
    with patch:
        for conn in _idle(pool):  # put back a moment ago: only the socket tells they are dead
            conn._stateset_returned_at = time.monotonic()
        response = api.get("/api/v1/orders")
    assert response.status_code == 200, response.content
    assert calls, "a connection whose server closed it was lent without a check"
