"""Prometheus series (SPEC §8). Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` (set by
``gunicorn.conf.py``) makes every worker write its samples to files that ``/metrics`` aggregates,
so a scrape sees all workers, not whichever one answered. A Celery worker does the same for its
pool's processes and serves the sum on ``[celery] metrics_port`` (:func:`serve`, from
``stateset.celery``). Process CPU and memory are read from the process tree at scrape time: the
gunicorn master or Celery main process and every child, one sample each (label ``pid``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import prometheus_client
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# In multiprocess mode every metric writes to a file in this directory from its creation on; a
# process that is not gunicorn or a worker (beat, manage.py) may be the first to need it.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# The process whose tree the process series cover: gunicorn.conf.py and stateset.celery set it to
# the gunicorn master / Celery main process, so every child reports the same tree.
ROOT_PID_ENV = "STATESET_METRICS_ROOT_PID"

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.08, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DB_CONNECTIONS = Gauge("database_connections", "Database pool connections", ["state"],
                       multiprocess_mode="livesum")
DB_POOL_MAX = Gauge("database_pool_max_connections",
                    "Database pool size limit (summed over processes)", multiprocess_mode="livesum")
DB_POOL_WAITING = Gauge("database_pool_requests_waiting", "Requests waiting for a pool connection",
                        multiprocess_mode="livesum")
CACHE_HITS = Counter("cache_hits_total", "Entity cache hits", ["entity"])
CACHE_MISSES = Counter("cache_misses_total", "Entity cache misses", ["entity"])
CACHE_ERRORS = Counter("cache_errors_total", "Cache operations that failed (Redis down)",
                       ["operation"])
ORDERS_CREATED = Counter("orders_created_total", "Orders created")
RESERVATIONS = Counter("inventory_reservations_total", "Reservation attempts", ["result"])
WEBHOOK_DELIVERIES = Counter("webhook_deliveries_total", "Webhook delivery attempts", ["result"])
CELERY_TASKS = Counter("celery_tasks_total", "Celery task runs", ["task", "state"])
BREAKER_OPEN = Gauge("circuit_breaker_open", "1 while a dependency is skipped after failing",
                     ["dependency"], multiprocess_mode="livemax")
BREAKER_TRIPS = Counter("circuit_breaker_trips_total", "Times a dependency's breaker opened",
                        ["dependency"])


# Label children by label values: ``labels()`` takes a lock and builds a tuple on every call.
_CHILDREN: dict[tuple[Any, ...], Any] = {}
POOL_SAMPLE_SECONDS = 1.0  # the pool gauges are sampled at most this often per process
_pool_sampled = [0.0]


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = metric.labels(*labels)
        if len(_CHILDREN) < 10_000:  # label values are bounded (routes); the memo is too
            _CHILDREN[key] = child
    return child


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    _child(HTTP_REQUESTS, method, route, str(status)).inc()
    _child(HTTP_DURATION, method, route).observe(seconds)
    now = time.monotonic()
    if now - _pool_sampled[0] >= POOL_SAMPLE_SECONDS:
        _pool_sampled[0] = now
        observe_pool()


def observe_pool() -> None:
    """This process's pool of primary connections (after each task, and at most once a second
    after requests: a gauge a scrape reads every few seconds)."""
    pool = getattr(connections["default"], "pool", None)
    if pool is not None:
        stats = pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        DB_CONNECTIONS.labels("idle").set(idle)
        DB_CONNECTIONS.labels("active").set(max(size - idle, 0))
        DB_POOL_MAX.set(pool.max_size)
        DB_POOL_WAITING.set(stats.get("requests_waiting", 0))


def cpu_cores() -> float:
    """The CPUs this container may use: its cgroup quota when one is set, else the machine's."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    return float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count() or 1)


class ProcessTreeCollector(Collector):
    """``process_cpu_seconds_total``, ``process_resident_memory_bytes`` and
    ``process_open_fds`` for the root process and each of its children, read at scrape time (in
    multiprocess mode prometheus_client's own process collector would see only the process that
    answers the scrape), and ``machine_cpu_cores`` for the CPU alert's denominator."""

    def collect(self) -> Iterator[Any]:
        import psutil

        try:
            root = psutil.Process(int(os.environ.get(ROOT_PID_ENV) or os.getpid()))
            processes = [root, *root.children(recursive=True)]
        except (psutil.Error, ValueError):
            processes = [psutil.Process()]
        cpu = CounterMetricFamily("process_cpu_seconds_total", "User and system CPU time",
                                  labels=["pid"])
        rss = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory", labels=["pid"])
        fds = GaugeMetricFamily("process_open_fds", "Open file descriptors", labels=["pid"])
        for process in processes:
            try:
                with process.oneshot():
                    times, memory, open_fds = (process.cpu_times(), process.memory_info(),
                                               process.num_fds())
            except psutil.Error:  # exited since the listing
                continue
            pid = str(process.pid)
            cpu.add_metric([pid], times.user + times.system)
            rss.add_metric([pid], memory.rss)
            fds.add_metric([pid], open_fds)
        yield cpu
        yield rss
        yield fds
        yield GaugeMetricFamily("machine_cpu_cores", "CPUs available to this instance",
                                value=cpu_cores())


def registry() -> prometheus_client.CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        collected.register(ProcessTreeCollector())
        return collected
    return prometheus_client.REGISTRY


# One process (tests, runserver): prometheus_client's default registry already has the process
# series of this process; the core count is added beside them.
class _CoresCollector(Collector):
    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily("machine_cpu_cores", "CPUs available to this instance",
                                value=cpu_cores())


if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    prometheus_client.REGISTRY.register(_CoresCollector())


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve this process tree's series on ``port`` (a Celery worker, which has no web server)."""
    prometheus_client.start_http_server(port, addr=addr, registry=registry())


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(prometheus_client.generate_latest(registry()),
                        content_type=prometheus_client.CONTENT_TYPE_LATEST)


def metrics_json_view(request: HttpRequest) -> JsonResponse:
    series: dict[str, Any] = {}
    for family in registry().collect():
        samples = [
            {"name": s.name, "labels": s.labels, "value": s.value}
            for s in family.samples
            if not s.name.endswith("_created")
        ]
        series[family.name] = {"type": family.type, "help": family.documentation,
                               "samples": samples}
    return JsonResponse({"metrics": series})
