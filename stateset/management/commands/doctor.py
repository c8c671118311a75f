import os
from typing import Any

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor

from stateset import health
from stateset.partitions import (
    add_months,
    list_partitions,
    month_start,
    partition_name,
    partitioned_tables,
)


class Command(BaseCommand):
    @staticmethod
    def _reach_database() -> str | None:
        """One direct connection with a short timeout (the pool would wait its full timeout,
        retrying): None when the server answers, else a generic name for the failure."""
        db = settings.DATABASES["default"]
        try:
            psycopg.connect(host=db["HOST"] or None, port=db["PORT"] or None, dbname=db["NAME"],
                            user=db["USER"] or None, password=db["PASSWORD"] or None,
                            connect_timeout=5,
                            **{k: v for k, v in db["OPTIONS"].items()
                               if k in {"sslmode", "sslrootcert", "options"}}).close()
        except psycopg.Error as exc:
            return health.failure_name(exc)
        return None

    help = (
        "Check the database, pool, Redis, broker, partitions and migrations; suggest a pool size.")

    def handle(self, *args: Any, **options: Any) -> None:
        problems = 0

        def report(ok: bool, name: str, detail: str) -> None:
            nonlocal problems
            problems += 0 if ok else 1
            self.stdout.write(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}")

        reached = self._reach_database()
        if reached is not None:  # at once, not after the pool's timeout
            report(False, "database (required)", reached)
            self.stdout.write("the database is unreachable: nothing else was checked")
            self.stdout.write(f"{problems} problem(s) found")
            raise SystemExit(1)
        found = health.components()
        for name, component in found.items():
            required = " (required)" if component["required"] else ""
            detail = (component.get("detail") or component.get("error")
                      or f"{component['latency_ms']} ms")
            if component["status"] != "ok" and not component["required"]:
                # Configured and not answering: the API goes on without it (SPEC §10), degraded —
                # an operator still has something to fix.
                detail += " (degraded: the API runs on without it)"
            report(component["status"] == "ok", f"{name}{required}", detail)
        if found["database"]["status"] != "ok":
            self.stdout.write("the database is unreachable: pool, connections, migrations and "
                              "partitions were not checked")
            self.stdout.write(f"{problems} problem(s) found")
            raise SystemExit(1)

        pool = getattr(connections["default"], "pool", None)
        if pool is not None:
            stats = pool.get_stats()
            report(True, "pool",
                   f"size {stats.get('pool_size')} (min {pool.min_size}, max {pool.max_size}), "
                                 f"available {stats.get('pool_available')}, waiting "
                                 f"{stats.get('requests_waiting', 0)}")
        options = settings.DATABASES["default"]["OPTIONS"]
        if settings.PGBOUNCER:
            report(True, "pgbouncer",
                   "on: transaction pooling assumed (no server-side prepared statements, "
                                      "no server-side cursors, no session state)")
        else:
            report(True, "pgbouncer", "off: direct connections; statements are prepared after "
                                      f"{options['prepare_threshold']} runs (statement cache "
                                      f"{settings.STATEMENT_CACHE_SIZE})"
                   if options["prepare_threshold"]
                   else "off: direct connections; prepared statements off (statement_cache_size = "
                        "0)")
        with connection.cursor() as cursor:
            cursor.execute("SHOW max_connections")
            server_max = int(cursor.fetchone()[0])
        cores = os.cpu_count() or 1
        suggested = cores * 2 + 1
        workers = int(os.environ.get("WEB_CONCURRENCY", cores * 2))
        per_instance = workers * settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
        report(per_instance < server_max, "connections",
               f"{workers} workers × pool max "
               f"{settings.DATABASES['default']['OPTIONS']['pool']['max_size']} = "
               f"{per_instance} per instance; server max_connections {server_max}. The guide's "
               "rule, "
               f"cores × 2 + spindles = {cores} × 2 + 1 = {suggested} busy connections per "
               "database host.")

        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        report(not pending, "migrations",
               "up to date" if not pending else f"{len(pending)} pending: run migrate")

        from django.utils import timezone

        ahead = add_months(month_start(timezone.now().date()), 2)
        for table in partitioned_tables():
            names = {p.name for p in list_partitions(table)}
            wanted = partition_name(table, ahead)
            report(wanted in names, f"partitions {table}",
                   f"{len(names)} partitions; "
                   f"{'ready' if wanted in names else 'missing ' + wanted} "
                   "(run create_partitions)")
        self.stdout.write("no problems found" if not problems else f"{problems} problem(s) found")
        if problems:
            raise SystemExit(1)
