"""Operator commands answer something true about the database they run against."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_doctor_reports_each_check(capsys):
    try:
        call_command("doctor")
    except SystemExit:
        pass
    out = capsys.readouterr().out
    assert "[ok] database (required)" in out
    assert "migrations: up to date" in out
    assert "partitions orders_order" in out and "partitions inventory_stockmovement" in out
    assert "cores × 2 + spindles" in out


def test_analyze_tables_and_index_report(capsys):
    call_command("analyze_tables", "orders_order", "catalog_product")
    out = capsys.readouterr().out
    assert "[1/2] orders_order" in out and "[2/2] catalog_product" in out
    call_command("index_report")
    assert "Unused indexes" in capsys.readouterr().out


def test_slow_queries_explains_when_the_extension_is_missing(capsys):
    call_command("slow_queries")
    out = capsys.readouterr().out
    assert "pg_stat_statements is not installed" in out or " calls " in out


def test_cache_stats_counts_hits_and_misses(capsys):
    from stateset.cache import EntityCache

    products = EntityCache("products")
    products.get_or_load("products:x", lambda: {"a": 1})
    products.get_or_load("products:x", lambda: {"a": 1})
    call_command("cache_stats")
    line = next(line for line in capsys.readouterr().out.splitlines()
                if line.startswith("products"))
    assert "hits          1" in line and "misses          1" in line


def test_doctor_fails_on_a_configured_dependency_that_does_not_answer(capsys, monkeypatch):
    import redis

    from stateset import health

    monkeypatch.setattr(health, "_redis", lambda: redis.Redis(port=1, socket_timeout=1).ping())
    with pytest.raises(SystemExit) as exited:
        call_command("doctor")
    out = capsys.readouterr().out
    assert exited.value.code == 1
    assert "[FAIL] redis: unreachable (degraded: the API runs on without it)" in out
    assert "[ok] database (required)" in out and "migrations: up to date" in out


def test_doctor_stops_at_once_when_the_database_is_down(capsys, monkeypatch):
    from django.conf import settings

    monkeypatch.setitem(settings.DATABASES["default"], "PORT", "1")  # nothing listens there
    with pytest.raises(SystemExit) as exited:
        call_command("doctor")
    out = capsys.readouterr().out
    assert exited.value.code == 1
    assert "[FAIL] database (required): unreachable" in out
    assert "nothing else was checked" in out and "migrations:" not in out
