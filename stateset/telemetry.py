"""Tracing (SPEC §8): OpenTelemetry with the official Django, psycopg, Redis and Celery
instrumentations, exported over OTLP to ``[telemetry] endpoint``.

Off unless ``[telemetry] enabled = true`` and the optional packages of
``requirements-telemetry.txt`` are installed; otherwise nothing here imports them. :func:`setup`
runs from ``StatesetConfig.ready`` in every process (gunicorn worker, Celery worker, manage.py)
before the first request or task. A task published by a request (the outbox kick after commit)
carries the request's trace context in its message headers (the Celery instrumentation's
``before_task_publish`` hook), so the dispatch task and the delivery tasks it queues continue the
request's trace in the worker.

Span export runs in a background thread per process. A Celery prefork child inherits the parent's
tracer but not its threads or its exporter's connection, so the span processor here builds its
exporter and thread lazily, once per process id.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("stateset.telemetry")
_state: dict[str, Any] = {"configured": False, "instrumentors": []}
_lock = threading.Lock()


def available() -> bool:
    """Whether the optional packages are installed (without importing them)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in (
        "opentelemetry.sdk", "opentelemetry.instrumentation.django",
        "opentelemetry.instrumentation.psycopg",
        "opentelemetry.instrumentation.redis", "opentelemetry.instrumentation.celery",
    ))


def setup(*, exporter: Any = None, batch: bool = True) -> bool:
    """Install the tracer provider and the instrumentations once per process. ``exporter`` (tests:
    an in-memory exporter) replaces the OTLP one and turns tracing on whatever the config says;
    ``batch=False`` exports each span as it ends. Returns whether tracing is on."""
    from django.conf import settings

    conf = settings.TELEMETRY
    if exporter is None and not conf["enabled"]:
        return False
    with _lock:
        if _state["configured"]:
            return True
        if not available():
            logger.warning(
                "[telemetry] enabled = true but the OpenTelemetry packages are not installed "
                           "(pip install -r requirements-telemetry.txt): tracing is off")
            return False
        from opentelemetry import trace
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider(resource=Resource.create({"service.name": conf["service_name"]}))
        factory = (lambda: exporter) if exporter is not None else (lambda: otlp_exporter(conf))
        # Duck-typed: the class is defined without importing the optional SDK.
        processor: Any = PerProcessSpanProcessor(factory, batch=batch and exporter is None)
        provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _state["provider"] = provider
        instrumentors: list[Any] = [DjangoInstrumentor(), PsycopgInstrumentor(),
                                    RedisInstrumentor(),
                         CeleryInstrumentor()]
        for instrumentor in instrumentors:
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=provider)
        _state["instrumentors"] = instrumentors
        _state["configured"] = True
        logger.info("tracing on",
                    extra={"fields": {"endpoint": conf["endpoint"], "protocol": conf["protocol"],
                                                    "service_name": conf["service_name"]}})
        return True


def otlp_exporter(conf: dict[str, Any]) -> Any:
    if conf["protocol"] == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter(endpoint=conf["endpoint"].rstrip("/") + "/v1/traces")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcExporter,
    )

    return GrpcExporter(endpoint=conf["endpoint"], insecure=conf["endpoint"].startswith("http://"))


def flush(timeout_millis: int = 10_000) -> bool:
    provider = _state.get("provider")
    return bool(provider is None or provider.force_flush(timeout_millis))


def teardown() -> None:
    """Remove the instrumentations (tests). The global tracer provider cannot be replaced, so a
    later :func:`setup` in the same process reuses it."""
    with _lock:
        for instrumentor in _state["instrumentors"]:
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        _state["instrumentors"] = []
        _state["configured"] = False


class PerProcessSpanProcessor:
    """A span processor whose exporter (and, when batching, export thread) is made in the process
    that ends the span: a forked child gets its own instead of a copy of its parent's."""

    def __init__(self, exporter_factory: Callable[[], Any], *, batch: bool) -> None:
        self._factory = exporter_factory
        self._batch = batch
        self._pid = 0
        self._inner: Any = None
        self._lock = threading.Lock()

    def _processor(self) -> Any:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    from opentelemetry.sdk.trace.export import (
                        BatchSpanProcessor,
                        SimpleSpanProcessor,
                    )

                    kind = BatchSpanProcessor if self._batch else SimpleSpanProcessor
                    self._inner = kind(self._factory())
                    self._pid = os.getpid()
        return self._inner

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self._processor().on_start(span, parent_context=parent_context)

    def on_end(self, span: Any) -> None:
        self._processor().on_end(span)

    def _on_ending(self, span: Any) -> None:  # SDK hook (1.3x+), nothing to do before end
        return None

    def shutdown(self) -> None:
        if self._inner is not None and self._pid == os.getpid():
            self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        if self._inner is None or self._pid != os.getpid():
            return True
        return bool(self._inner.force_flush(timeout_millis))
