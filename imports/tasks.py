"""Celery entry points of the imports app: take ids, call one service."""

import uuid

from celery import shared_task

from imports import services


@shared_task(ignore_result=True, acks_late=True)
def import_run(import_id: str) -> str | None:
    record = services.import_run(import_id=uuid.UUID(import_id))
    return record.status if record is not None else None


@shared_task(ignore_result=True)
def imports_purge() -> int:
    return services.imports_purge()
