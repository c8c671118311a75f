"""gunicorn settings for production and `make run`/`make bench` (override with GUNICORN_* env vars
or command-line flags)."""

import multiprocessing
import os
import shutil
import tempfile
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# The guide's rule of thumb for the pool applies to workers too: about two per core.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
# gthread keeps client connections alive (sync workers close every one), which matters behind
# nginx's keepalive upstream and for k6.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
keepalive = 5
# gunicorn answers a request line or header field over its limit itself, with a plain-text page
# before Django runs: raise the line to the most gunicorn bounds (its default is 4094), so an
# over-long query string reaches the API and gets its JSON 422 (SPEC §3).
limit_request_line = 8190
limit_request_field_size = 8190
timeout = 30
graceful_timeout = 20
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = 100
accesslog = None  # the app writes one JSON line per request
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")
proc_name = "stateset"

# Prometheus multiprocess mode: every worker writes samples here; /metrics aggregates them.
_metrics_dir = (os.environ.get("PROMETHEUS_MULTIPROC_DIR")
                or tempfile.mkdtemp(prefix="stateset-metrics-"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server: Any) -> None:
    os.makedirs(_metrics_dir, exist_ok=True)
    for name in os.listdir(_metrics_dir):
        os.unlink(os.path.join(_metrics_dir, name))
    # The process series (CPU, memory) cover this master and every worker, whichever answers.
    os.environ["STATESET_METRICS_ROOT_PID"] = str(os.getpid())


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _metrics_dir.startswith(tempfile.gettempdir()):
        shutil.rmtree(_metrics_dir, ignore_errors=True)
