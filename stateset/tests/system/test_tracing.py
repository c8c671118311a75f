"""Tracing (SPEC §8) with an in-memory exporter: a ``POST /api/v1/orders`` span with its SQL and
cache spans, and the webhook delivery that the order's outbox event starts, run by a Celery worker
consuming the Redis broker, in the same trace (the trace context travels in the task messages)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.db import connections

from stateset import telemetry
from stateset.tests.system.servers import ROOT

pytestmark = pytest.mark.skipif(
    not telemetry.available(),
    reason="the optional OpenTelemetry packages are not installed (pip install -r "
           "requirements-telemetry.txt)")

BROKER = os.environ.get("CELERY_TEST_BROKER_URL") or (
    os.environ.get("REDIS_URL", "").rsplit("/", 1)[0] + "/2" if os.environ.get("REDIS_URL") else "")


@pytest.fixture(scope="module")
def spans():
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    assert telemetry.setup(exporter=exporter, batch=False)
    yield exporter
    telemetry.teardown()


@pytest.fixture
def traced(spans, transactional_db):
    """Tracing on, and this thread's database connections made anew (through the instrumented
    ``psycopg.connect``)."""
    connections["default"].close()
    connections["default"].close_pool()
    spans.clear()
    yield spans
    connections["default"].close()
    connections["default"].close_pool()


@pytest.fixture
def broker_worker():
    """The project's Celery app publishing to the Redis broker, and a worker thread consuming it."""
    if not BROKER:
        pytest.skip("needs a Redis broker: set REDIS_URL or CELERY_TEST_BROKER_URL")
    from celery.contrib.testing.worker import start_worker

    from stateset.celery import app

    saved = {"task_always_eager": app.conf.task_always_eager, "broker_url": app.conf.broker_url}
    app.conf.update(task_always_eager=False, broker_url=BROKER)
    app._pool = None
    app.amqp._producer_pool = None
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    try:
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                          loglevel="WARNING", shutdown_timeout=30):
            yield app
    finally:
        app.conf.update(**saved)
        app._pool = None
        app.amqp._producer_pool = None


def test_an_order_request_and_the_webhook_delivery_it_starts_share_one_trace(traced, broker_worker,
                                                                             api):
    from catalog.services import product_create
    from customers.services import customer_create
    from inventory.models import Location
    from inventory.services import stock_receive
    from webhooks import services as webhook_services
    from webhooks.models import Delivery
    from webhooks.tests.test_webhooks import Receiver

    product = product_create(sku="TRACE-1", name="Traced", price=Decimal("5.00"))
    customer = customer_create(email="trace@example.com")
    location = Location.objects.create(code="TRACE", name="Trace")
    stock_receive(product_id=product.id, location_id=location.id, quantity=10, reason="test")
    receiver = Receiver()
    try:
        webhook_services.endpoint_create(url=receiver.url, events=["order.created"])
        traced.clear()
        response = api.post("/api/v1/orders", {"customer_id": str(customer.id),
                                               "items": [{"product_id": str(product.id),
                                                          "quantity": 1}]},
                            format="json", HTTP_IDEMPOTENCY_KEY="trace-1")
        assert response.status_code == 201, response.content
        deadline = time.monotonic() + 60
        while not Delivery.objects.filter(status="succeeded").exists():
            assert time.monotonic() < deadline, "the worker did not deliver the webhook"
            time.sleep(0.2)
        assert len(receiver.requests) == 1
    finally:
        receiver.close()
    deadline = time.monotonic() + 10
    while True:  # the worker thread ends its task span just after the delivery row is written
        finished = traced.get_finished_spans()
        delivers = [s for s in finished if s.name == "run/webhooks.tasks.webhooks_deliver"]
        if delivers or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    # Django's instrumentation names the span after the URL pattern (DRF's router:
    # "api/v1/orders$").
    requests = [s for s in finished if s.kind.name == "SERVER"
                and s.name.rstrip("$") == "POST api/v1/orders"]
    assert len(requests) == 1, [(s.name, s.kind.name, dict(s.attributes)) for s in finished
                                if s.kind.name == "SERVER"]
    request = requests[0]
    trace_id = request.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]

    def descends_from_request(span) -> bool:
        by_id = {s.context.span_id: s for s in in_trace}
        while span.parent is not None:
            if span.parent.span_id == request.context.span_id:
                return True
            span = by_id.get(span.parent.span_id)
            if span is None:
                return False
        return False

    sql = [s for s in in_trace if s.attributes.get("db.system") == "postgresql" or
           s.attributes.get("db.system.name") == "postgresql"]
    request_sql = [s for s in sql if descends_from_request(s)]
    statements = " ".join(
        str(s.attributes.get("db.statement") or s.attributes.get("db.query.text") or s.name)
                          for s in request_sql)
    assert len(request_sql) >= 5 and "INSERT" in statements and "orders_order" in statements
    redis = [s for s in in_trace if s.attributes.get("db.system") == "redis" or
             s.attributes.get("db.system.name") == "redis"]
    assert any(descends_from_request(s)
               for s in redis), "the request's cache calls are in its trace"
    names = {s.name for s in in_trace}
    assert {"run/webhooks.tasks.webhooks_dispatch",
            "run/webhooks.tasks.webhooks_deliver"} <= names, names
    deliver = next(s for s in in_trace if s.name == "run/webhooks.tasks.webhooks_deliver")
    assert descends_from_request(deliver)
    assert deliver.attributes.get("celery.state") == "SUCCESS"
    # The worker's SQL is in the trace too, under the delivery task.
    assert any(s.parent and s.parent.span_id == deliver.context.span_id for s in sql)


def test_nothing_is_imported_when_telemetry_is_off():
    # redis-py imports the OpenTelemetry API for its own optional metrics when it is installed; what
    # must stay out is ours: no instrumentation, no SDK tracer provider.
    code = ("import sys, django; django.setup(); from stateset import telemetry; "
            "print(telemetry.setup(), any(m.startswith(('opentelemetry.instrumentation', "
            "'opentelemetry.sdk.trace')) for m in sys.modules))")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="stateset.settings",
               STATESET__TELEMETRY__ENABLED="false")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_enabled_telemetry_exports_over_otlp_to_the_configured_endpoint():
    """The real exporter, from a real process: ``manage.py check`` with tracing on sends its spans
    to a local OTLP/HTTP receiver (protobuf, decoded here)."""
    import http.server
    import threading

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[ExportTraceServiceRequest] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            message = ExportTraceServiceRequest()
            message.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(message)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    code = (
        "import django; django.setup(); from django.test import Client; from stateset import "
        "telemetry; "
            "assert Client().get('/health').status_code == 200; telemetry.flush()")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="stateset.settings",
               STATESET__TELEMETRY__ENABLED="true",
               STATESET__TELEMETRY__PROTOCOL="http/protobuf",
               STATESET__TELEMETRY__SERVICE_NAME="stateset-otlp-test",
               STATESET__TELEMETRY__ENDPOINT=f"http://127.0.0.1:{server.server_port}",
               ALLOWED_HOSTS="testserver")
    try:
        subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                       text=True, check=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    spans = [(resource.resource, span) for message in received
             for resource in message.resource_spans
             for scope in resource.scope_spans for span in scope.spans]
    assert any(span.name == "GET health" for _, span in spans), [span.name for _, span in spans]
    services = {a.value.string_value for resource,
                _ in spans for a in resource.attributes if a.key == "service.name"}
    assert services == {"stateset-otlp-test"}
