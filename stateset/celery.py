"""The Celery app. Redis broker when configured; without one, tasks run eagerly in-process."""

import os

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")

app = Celery("stateset")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def _count_task(task=None, state=None, **_kwargs):  # type: ignore[no-untyped-def]
    from stateset import metrics

    metrics.CELERY_TASKS.labels(getattr(task, "name", "?"), state or "UNKNOWN").inc()
