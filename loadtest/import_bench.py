"""The import row of ``make bench`` (SPEC §9): 100,000 product rows (CSV) through the import
service.

    python -m loadtest.import_bench [--rows 100000] [--batch-size N] [--profile FILE]

Runs against ``DATABASE_URL`` (``loadtest.bench`` passes its data set's database; migrate it first
when run alone). It writes a CSV of new products to a temporary file, stores it and runs it with
``imports.services`` — exactly what the Celery task does (``POST /imports`` only adds the upload) —
then imports the same file again (every row ``unchanged``), and prints one JSON object: wall
seconds of each run, rows per second, and this process's resident memory before, at its peak
(sampled every 50 ms) and at the end. The products it made are deleted again afterwards, so the
data set stays as ``generate_data`` left it. Target: ≤ 60 s on 2 cores, memory flat.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 60
PREFIX = "IMPBENCH-"


class RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(os.getpid())
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self._stop.set()
        self.join()
        return self.peak


def write_csv(path: Path, rows: int) -> int:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("sku,name,description,price,currency,is_active,attributes\n")
        for n in range(rows):
            handle.write(
                f'{PREFIX}{n:07d},Bench product {n},"Imported by the bench, row {n}",'
                f'{(n % 9000) + 0.99:.2f},USD,true,"{{""batch"": {n // 1000}, ""tag"": '
                f'""b{n % 7}""}}"\n'
            )
    return path.stat().st_size


def _backend_cpu() -> float | None:
    """CPU seconds of this connection's PostgreSQL backend, when the server runs on this machine."""
    import psutil
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            times = psutil.Process(cursor.fetchone()[0]).cpu_times()
        return times.user + times.system
    except (psutil.Error, TypeError):
        return None


def run_once(path: Path, progress_every: int) -> dict[str, Any]:
    from imports import services

    sampler = RssSampler()
    before = sampler.process.memory_info().rss
    db_before = _backend_cpu()
    sampler.start()
    cpu = time.process_time()
    started = time.perf_counter()
    with path.open("rb") as stream:
        record = services.import_create(
            kind="products", stream=stream, actor="bench:import", file_name=path.name, enqueue=False
        )
    stored = time.perf_counter() - started

    warm: list[int] = []

    def progress(r: Any) -> None:
        if not warm and r.rows_total and r.rows_done >= r.rows_total // 10:
            warm.append(sampler.process.memory_info().rss)  # after the first tenth: caches warm
        if r.rows_done and r.rows_done % progress_every == 0:
            print(
                f"[import_bench] {r.rows_done:,}/{r.rows_total:,} rows, "
                f"{time.perf_counter() - started:.1f}s",
                file=sys.stderr,
                flush=True,
            )

    finished = services.import_run(import_id=record.id, progress=progress)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    db_after = _backend_cpu()
    peak = sampler.stop()
    after = sampler.process.memory_info().rss
    assert finished is not None
    return {
        "import_id": str(finished.id),
        "status": finished.status,
        "seconds": round(seconds, 2),
        "store_file_s": round(stored, 2),
        "rows_per_s": round(finished.rows_done / seconds),
        "app_cpu_s": round(cpu, 2),
        "db_cpu_s": round(db_after - db_before, 2)
        if db_before is not None and db_after is not None
        else None,
        "load_average": round(os.getloadavg()[0], 2),
        "created": finished.created,
        "updated": finished.updated,
        "unchanged": finished.unchanged,
        "failed": finished.failed,
        "rss_before_mb": round(before / 2**20, 1),
        "rss_peak_mb": round(peak / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "rss_after_first_tenth_mb": round(warm[0] / 2**20, 1) if warm else None,
    }


def delete_bench_products() -> int:
    """Nothing references them (no stock, no orders): one DELETE, not the ORM's collector."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM catalog_product WHERE sku LIKE %s", [PREFIX + "%"])
        return cursor.rowcount


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.import_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=0, help="Default: [imports] batch_size.")
    parser.add_argument(
        "--profile", default="", help="Write a cProfile of the first run to this file."
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")
    if args.batch_size:
        os.environ["STATESET__IMPORTS__BATCH_SIZE"] = str(args.batch_size)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from django.conf import settings

    delete_bench_products()
    with tempfile.TemporaryDirectory(prefix="stateset-import-bench-") as tmp:
        path = Path(tmp) / "products.csv"
        size = write_csv(path, args.rows)
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            first = profiler.runcall(run_once, path, 20_000)
            profiler.dump_stats(args.profile)
        else:
            first = run_once(path, 20_000)
        again = run_once(path, 20_000)
    deleted = delete_bench_products()
    result = {
        "name": "import",
        "endpoint": "import of 100,000 product rows (CSV)"
        if args.rows == 100_000
        else f"import of {args.rows:,} product rows (CSV)",
        "rows": args.rows,
        "file_mb": round(size / 2**20, 1),
        "batch_size": settings.IMPORTS_BATCH_SIZE,
        "cpus": os.cpu_count(),
        "seconds": first["seconds"],
        "rows_per_s": first["rows_per_s"],
        "peak_rss_mb": first["rss_peak_mb"],
        "rss_growth_mb": round(first["rss_peak_mb"] - first["rss_before_mb"], 1),
        # Flat memory: the peak over the whole file against the first tenth (warm-up excluded).
        "rss_growth_after_first_tenth_mb": round(
            first["rss_peak_mb"] - (first["rss_after_first_tenth_mb"] or first["rss_before_mb"]), 1
        ),
        "first": first,
        "reimport": again,
        "cleaned_up": deleted,
        "target_s": TARGET_SECONDS,
        "pass": first["status"] == "succeeded"
        and first["created"] == args.rows
        and first["seconds"] <= TARGET_SECONDS
        and again["unchanged"] == args.rows,
    }
    print(json.dumps(result))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
