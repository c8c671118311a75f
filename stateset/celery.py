"""The Celery app. Redis broker when configured; without one, tasks run eagerly in-process.

Every task runs in its own database scope (``stateset.db.request_scope``): once it has written,
its reads go to the primary. A worker started with ``[celery] metrics_port`` serves the series of
its whole process tree there (``webhook_deliveries_total``, ``celery_tasks_total``, process CPU and
memory): the pool's child processes write their samples to one multiprocess directory, which has
to be chosen before anything imports prometheus_client — hence the work at import time below.
"""

import os
import shutil
import sys
import tempfile
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, worker_init, worker_process_shutdown, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")


def _worker_metrics_port() -> int:
    """``[celery] metrics_port`` when this process is a Celery worker, else 0."""
    if "worker" not in sys.argv[1:]:
        return 0
    from stateset import config

    return int(config.load()["celery"]["metrics_port"])


METRICS_PORT = _worker_metrics_port()
_OWN_METRICS_DIR = ""
if METRICS_PORT and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _OWN_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="stateset-worker-metrics-")


class ScopedTask(Task[Any, Any]):
    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        from stateset.db import request_scope

        with request_scope():
            return super().__call__(*args, **kwargs)


app = Celery("stateset", task_cls=ScopedTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def _count_task(task: Any = None, state: str | None = None, **_kwargs: Any) -> None:
    from stateset import metrics

    metrics.CELERY_TASKS.labels(getattr(task, "name", "?"), state or "UNKNOWN").inc()
    metrics.observe_pool()


@worker_init.connect
def _serve_metrics(**_kwargs):  # type: ignore[no-untyped-def]
    if not METRICS_PORT:
        return
    from stateset import metrics

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if directory:  # one directory per process tree: samples of an earlier run are not ours
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
    os.environ[metrics.ROOT_PID_ENV] = str(os.getpid())
    metrics.serve(METRICS_PORT)


@worker_process_shutdown.connect
def _child_exited(pid=None, **_kwargs):  # type: ignore[no-untyped-def]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


@worker_shutdown.connect
def _drop_own_metrics_dir(**_kwargs):  # type: ignore[no-untyped-def]
    if _OWN_METRICS_DIR:
        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)
