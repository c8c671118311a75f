"""Prometheus series (SPEC §8). Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` (set by
``gunicorn.conf.py``) makes every worker write its samples to files that ``/metrics`` aggregates,
so a scrape sees all workers, not whichever one answered."""

from __future__ import annotations

import os
from typing import Any

import prometheus_client
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import Counter, Gauge, Histogram, multiprocess

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.08, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DB_CONNECTIONS = Gauge("database_connections", "Database pool connections", ["state"],
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


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)
    pool = getattr(connections["default"], "pool", None)
    if pool is not None:
        stats = pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        DB_CONNECTIONS.labels("idle").set(idle)
        DB_CONNECTIONS.labels("active").set(max(size - idle, 0))


def registry() -> prometheus_client.CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    return prometheus_client.REGISTRY


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
