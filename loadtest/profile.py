"""Where one request's time goes: cProfile over the bench's requests, in-process, on a bench
database.

    python -m loadtest.profile [--orders 1000000 --products 100000] [--requests 300] [--top 25]
                               [scenario ...]   # health locations orders_list products_search
                                                # inventory_reserve orders_create (default: all)

Runs the same requests as the k6 scenarios through Django's full handler and middleware (the test
client, with the production settings ``make bench`` uses) against the data set ``make bench``
generated (``stateset_bench_1m_100k`` by default; run the bench first). One process, one thread,
no network: it shows the Python and SQL cost of an endpoint, not its behaviour under concurrency.
Prints wall time and queries per request and the functions with the most own time; the full
profiles are saved as ``.prof`` files (``python -m pstats FILE`` or snakeviz).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtest import bench

REQUESTS: dict[str, tuple[str, str, Callable[[], dict[str, Any]] | None]] = {
    "locations": ("GET", "/api/v1/locations", None),
    "health": ("GET", "/health", None),
    "orders_list": ("GET", "/api/v1/orders?page=1&limit=20", None),
    "products_search": ("GET", "/api/v1/products/search?q=wid&limit=20", None),
    "inventory_reserve": (
        "POST",
        "/api/v1/inventory/reserve",
        lambda: {
            "items": [{"sku": "TEST-001", "quantity": 1}],
            "reference_type": "profile",
            "reference_id": f"profile-{uuid.uuid4().hex}",
        },
    ),
    "orders_create": (
        "POST",
        "/api/v1/orders",
        lambda: {
            "customer_id": "550e8400-e29b-41d4-a716-446655440001",
            "items": [
                {
                    "product_id": "550e8400-e29b-41d4-a716-446655440002",
                    "sku": "TEST-001",
                    "quantity": 2,
                    "unit_price": 29.99,
                }
            ],
            "total_amount": 59.98,
        },
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--orders", type=int, default=int(os.environ.get("BENCH_ORDERS", 1_000_000))
    )
    parser.add_argument(
        "--products", type=int, default=int(os.environ.get("BENCH_PRODUCTS", 100_000))
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="Profile with the process's CPU clock instead of the wall clock: what a request "
        "costs the worker, without the time it waits for PostgreSQL and Redis.",
    )
    parser.add_argument("scenarios", nargs="*", help=", ".join(REQUESTS))
    args = parser.parse_args(argv)
    args.scenarios = args.scenarios or list(REQUESTS)
    unknown = [s for s in args.scenarios if s not in REQUESTS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")

    server_url, started_db = bench.database_server(dict(os.environ))
    dataset = bench.Dataset(args.orders, args.products)
    exists, marker = bench.read_marker(server_url, dataset.name)
    if not exists:
        print(
            f"no database {dataset.name}: run make bench (or python -m loadtest.bench) first",
            file=sys.stderr,
        )
        return 2
    os.environ.update(
        {
            "DATABASE_URL": bench.with_database(server_url, dataset.name),
            "STATESET_ENV": "production",
            "DEBUG": "false",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="stateset-profile-metrics-")
    )
    try:
        return run(args, dataset)
    finally:
        if started_db:
            from stateset import localdb

            localdb.stop()


def run(args: argparse.Namespace, dataset: bench.Dataset) -> int:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from stateset import services

    _, key = services.api_key_create(name="profile", scopes=["*"])
    client = Client(
        HTTP_HOST="127.0.0.1",
        HTTP_X_API_KEY=key,
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_ACCEPT_ENCODING="gzip, deflate, br",
    )
    outdir = Path(tempfile.mkdtemp(prefix="stateset-profile-"))
    print(
        f"profiling on {dataset.name}, {args.requests} requests per endpoint (after 30 to warm up)"
    )

    def call(name: str) -> int:
        method, path, body = REQUESTS[name]
        if method == "GET" or body is None:
            return client.get(path).status_code
        return client.post(
            path,
            data=json.dumps(body()),
            content_type="application/json",
            headers={"Idempotency-Key": uuid.uuid4().hex},
        ).status_code

    captured: list[tuple[float, str]] = []

    def capture(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            captured.append((time.perf_counter() - started, sql))

    for name in args.scenarios:
        statuses = {call(name) for _ in range(30)}
        started, started_cpu = time.perf_counter(), time.process_time()
        for _ in range(args.requests):
            statuses.add(call(name))
        plain_ms = (time.perf_counter() - started) * 1000 / args.requests
        cpu_ms = (time.process_time() - started_cpu) * 1000 / args.requests
        captured.clear()
        with connection.execute_wrapper(capture):
            call(name)
        queries = list(captured)
        profiler = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(args.requests):
            statuses.add(call(name))
        profiler.disable()
        elapsed = time.perf_counter() - started
        path = outdir / f"{name}.prof"
        profiler.dump_stats(path)
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(args.top)
        lines = [line for line in text.getvalue().splitlines() if line.strip()]
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print(
            f"\n== {name}: {plain_ms:.2f} ms per request, {cpu_ms:.2f} ms of it CPU "
            f"({elapsed * 1000 / args.requests:.2f} under the "
            f"{'CPU-clock ' if args.cpu else ''}profiler), {len(queries)} queries taking "
            f"{sum(t for t, _ in queries) * 1000:.2f} ms, "
            f"statuses {sorted(statuses)}; {path}"
        )
        for seconds, sql in queries:
            print(f"   {seconds * 1000:6.2f} ms  {' '.join(sql.split())[:150]}")
        print("\n".join("   " + line for line in lines[start : start + args.top + 1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
