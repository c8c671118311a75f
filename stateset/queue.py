"""Sending a Celery task from a request, bounded (SPEC §10).

``task.delay()`` with a hung broker waits the transport's socket timeout on every publish attempt,
and Celery retries a publish three times by default: seconds per request. :func:`enqueue` sends
once (``retry=False``) over a per-thread connection whose socket timeouts are ``[redis] timeout``,
behind :data:`stateset.breaker.broker_breaker`: the first failure costs one timeout, then enqueues
are skipped for a few seconds. Every caller has a fallback for a task that was not sent (the outbox
pump delivers events; ``last_used_at`` is best-effort), so :func:`enqueue` only reports, never
raises. Without a broker (eager mode) the task runs in-process as before.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings

from stateset.breaker import broker_breaker

logger = logging.getLogger("stateset.queue")
_local = threading.local()


def _producer() -> Any:
    """This thread's producer, made again when the app's broker changed (a test's worker, a
    reconfigured app): a producer keeps the connection it was made with."""
    from stateset.celery import app

    producer = getattr(_local, "producer", None)
    if producer is not None and getattr(_local, "broker_url", None) != app.conf.broker_url:
        _drop_producer()
        producer = None
    if producer is None:
        options: dict[str, Any] = {}
        if str(app.conf.broker_url or "").startswith(("redis://", "rediss://", "unix://")):
            timeout = settings.REDIS_TIMEOUT_SECONDS
            options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        connection = app.connection_for_write(transport_options=options, connect_timeout=
                                              settings.REDIS_TIMEOUT_SECONDS)
        producer = app.amqp.Producer(connection, auto_declare=False)
        _local.producer, _local.broker_url = producer, app.conf.broker_url
    return producer


def _drop_producer() -> None:
    producer = getattr(_local, "producer", None)
    _local.producer = None
    if producer is not None:
        try:
            producer.connection.release()
        except Exception:  # already broken: nothing to give back
            pass


def enqueue(task: Any, *args: Any, countdown: float | None = None) -> bool:
    """Send ``task(*args)`` to the broker (or run it, in eager mode). False when it was not sent.
    With ``countdown`` (seconds) a worker runs it that much later; in eager mode, where nothing can
    wait, such a task is not run (False: the caller's fallback, e.g. a periodic pump, applies)."""
    if task.app.conf.task_always_eager:
        if countdown:
            return False
        try:
            task.apply_async(args)
        except Exception:  # ran in-process and failed: the caller's fallback applies, as for a send
            logger.warning("eager task %s failed", task.name, exc_info=True)
            return False
        return True
    if not broker_breaker.allow():
        return False
    try:
        task.apply_async(args, producer=_producer(), retry=False, countdown=countdown)
    except Exception as exc:
        _drop_producer()
        broker_breaker.failure(exc)
        logger.warning("could not enqueue %s", task.name, extra={"fields": {"task": task.name,
                                                                           "error": type(
                                                                               exc).__name__}})
        return False
    broker_breaker.success()
    return True
