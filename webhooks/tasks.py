"""Celery entry points of the webhooks app: take ids, call one service."""

import uuid

from celery import shared_task

from webhooks import services


@shared_task(ignore_result=True)
def webhooks_dispatch() -> int:
    return len(services.dispatch())


@shared_task(ignore_result=True)
def webhooks_deliver(delivery_id: str) -> str | None:
    return services.deliver(delivery_id=uuid.UUID(delivery_id))


@shared_task(ignore_result=True)
def webhooks_pump() -> int:
    """Every 15 s (beat): dispatch what a lost kick left in the outbox, then queue due retries."""
    created = set(services.dispatch())  # these are queued by dispatch itself
    due = [delivery_id for delivery_id in services.due_deliveries() if delivery_id not in created]
    for delivery_id in due:
        webhooks_deliver.delay(str(delivery_id))
    return len(due)


@shared_task(ignore_result=True)
def webhooks_purge() -> int:
    return services.purge()
