from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection


class Command(BaseCommand):
    help = "The slowest statements by mean time, from pg_stat_statements when it is installed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=20)

    def handle(self, *args: Any, **options: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
            if cursor.fetchone() is None:
                self.stdout.write(
                    "pg_stat_statements is not installed. Add it to shared_preload_libraries in "
                    "postgresql.conf, restart PostgreSQL, then run: CREATE EXTENSION "
                    "pg_stat_statements;"
                )
                return
            cursor.execute(
                "SELECT mean_exec_time, calls, total_exec_time, query FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "ORDER BY mean_exec_time DESC LIMIT %s",
                [options["limit"]],
            )
            rows = cursor.fetchall()
        for mean, calls, total, query in rows:
            text = " ".join(query.split())[:160]
            self.stdout.write(
                f"{mean:9.2f} ms mean  {calls:8d} calls  {total / 1000:8.1f} s total  {text}")
