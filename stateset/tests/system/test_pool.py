"""SPEC §10: after a database restart the pool recovers without a process restart. A restart is
modelled by terminating every server process behind the pool's connections."""

import psycopg
import pytest
from django.db import connection


def terminate_pooled_connections() -> int:
    s = connection.settings_dict
    with psycopg.connect(dbname=s["NAME"], user=s["USER"], host=s["HOST"] or None,
                         port=s["PORT"] or None,
                         password=s["PASSWORD"] or None, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'stateset' AND pid <> "
            "pg_backend_pid()"
        ).fetchall()
    return len(rows)


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
