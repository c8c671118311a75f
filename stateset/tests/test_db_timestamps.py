"""Timestamps are read through psycopg's C loader (stateset.postgresql.base._tz_loader) and answer
exactly as Django's own loader does."""

import datetime as dt

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.adapt import Transformer

from stateset.postgresql.base import _tz_loader

VALUES = [
    "2026-12-04 20:02:46.123456+00",
    "2026-12-04 20:02:46+00",
    "2026-06-04 20:02:46.5+05:30",  # another offset: converted to the session's zone
    "1999-12-31 23:59:59.999999-08",
    "0099-06-04 20:02:46+00",
    "2026-03-29 01:30:00+00",
]


@pytest.mark.django_db
def test_the_connection_reads_timestamps_with_the_c_loader():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(1184, 0)  # timestamptz, text
    assert loader is not None and loader.__name__ == "CTzLoader"
    assert loader.timezone == connection.timezone


@pytest.mark.django_db
def test_timestamps_read_as_djangos_own_loader_reads_them():
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"'{v}'::timestamptz" for v in VALUES))
        got = list(cursor.fetchone())
        cursor.execute("SELECT " + ", ".join(f"'{v}'::timestamptz::text" for v in VALUES))
        texts = cursor.fetchone()
    # Django's loader (psycopg's Python one, tzinfo replaced) on the text the server sent
    django_loader = type("Specific", (BaseTzLoader,), {"timezone": connection.timezone})
    expected = [django_loader(1184, Transformer(connection.connection)).load(text.encode())
                for text in texts]
    assert got == expected
    assert [value.tzinfo for value in got] == [value.tzinfo for value in expected]
    assert got[2] == dt.datetime(2026, 6, 4, 14, 32, 46, 500000, tzinfo=dt.UTC)


def test_without_the_c_module_django_keeps_its_loader(monkeypatch):
    from psycopg import _cmodule

    monkeypatch.setattr(_cmodule, "_psycopg", None)
    assert _tz_loader.__wrapped__(dt.UTC) is None  # past the per-zone cache


@pytest.mark.django_db
def test_every_checkout_registers_the_same_loader_class():
    """Django asks for the connection parameters on every checkout; psycopg keeps every loader
    class it is given, so a class made per call grows a worker by one a request (a bench run's
    workers reached 171 MB)."""
    from psycopg.adapt import AdaptersMap

    loaders = set()
    for _ in range(5):
        context = connection.get_connection_params()["context"]
        loaders.add(context.get_loader(1184, 0))
    seen = len(AdaptersMap._optimised)
    for _ in range(50):
        connection.get_connection_params()
    assert len(loaders) == 1
    assert len(AdaptersMap._optimised) == seen
