"""``stateset.queue.enqueue``: in eager mode (no broker) a task runs in-process at once — unless it
was meant to wait, which nothing in-process can do."""

import pytest
from celery import shared_task

from stateset.queue import enqueue

ran: list[int] = []


@shared_task
def _record(value: int) -> None:
    ran.append(value)


@pytest.fixture(autouse=True)
def eager():
    app = _record.app  # the current app: another test may have made its own Celery() current
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    ran.clear()
    yield
    app.conf.task_always_eager = previous


def test_an_eager_task_runs_at_once():
    assert enqueue(_record, 1) is True and ran == [1]


def test_an_eager_task_with_a_countdown_is_not_run_now():
    assert enqueue(_record, 2, countdown=30) is False and ran == []
