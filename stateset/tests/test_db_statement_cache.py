"""psycopg's placeholder conversion is cached for the order path's long batched statements too
(``stateset.apps._cache_long_statements``)."""

from __future__ import annotations

import pytest
from django.db import connection
from psycopg import _queries

from stateset.apps import CACHED_STATEMENT_LIMITS


def test_the_limits_psycopg_reads_are_raised():
    for name, value in CACHED_STATEMENT_LIMITS.items():
        assert getattr(_queries, name) >= value, name  # the names psycopg reads, raised at setup


@pytest.mark.django_db
def test_a_statement_of_80_parameters_is_converted_once():
    sql = "SELECT " + ", ".join(["%s::int"] * 80)
    _queries._query2pg.cache_clear()
    with connection.cursor() as cursor:
        for n in range(3):
            cursor.execute(sql, list(range(n, n + 80)))
            assert cursor.fetchone() == tuple(range(n, n + 80))
    info = _queries._query2pg.cache_info()
    assert (info.misses, info.hits) == (1, 2)
