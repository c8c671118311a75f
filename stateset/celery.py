"""The Celery app. Redis broker when configured; without one, tasks run eagerly in-process."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")

app = Celery("stateset")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def _count_task(task: Any = None, state: str | None = None, **_kwargs: Any) -> None:
    from stateset import metrics

    metrics.CELERY_TASKS.labels(getattr(task, "name", "?"), state or "UNKNOWN").inc()
