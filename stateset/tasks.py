"""Celery entry points of the API platform: take ids, call one service."""

from datetime import datetime

from celery import shared_task

from stateset import services


@shared_task(ignore_result=True)
def api_key_touch(key_id: str, at: str) -> int:
    return services.api_key_touch(key_id=key_id, at=datetime.fromisoformat(at))


@shared_task(ignore_result=True)
def idempotency_purge() -> int:
    return services.idempotency_purge_expired()


@shared_task(ignore_result=True)
def partitions_ensure(months_ahead: int = 3) -> dict[str, list[str]]:
    """Daily: keep monthly partitions of every partitioned table ready ``months_ahead`` months
    out."""
    from stateset.partitions import ensure_partitions, partitioned_tables

    return {table: ensure_partitions(table, months_ahead=months_ahead)
            for table in partitioned_tables()}


@shared_task(ignore_result=True)
def analyze_tables() -> None:
    """Nightly ANALYZE so the planner's statistics (and list-total estimates) stay current."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
