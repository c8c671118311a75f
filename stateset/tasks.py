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
