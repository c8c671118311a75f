import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from stateset.partitions import partitioned_tables


class Command(BaseCommand):
    help = (
        "ANALYZE every table (or the ones named) so the planner and list-total estimates stay "
        "current.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tables", nargs="*",
                            help="Tables to analyze (default: all of this database).")

    def handle(self, *args: Any, **options: Any) -> None:
        tables = (options["tables"]
                  or sorted(
                      set(connection.introspection.table_names()) | set(partitioned_tables())))
        with connection.cursor() as cursor:
            for index, table in enumerate(tables, 1):
                started = time.perf_counter()
                cursor.execute(f'ANALYZE "{table}"')
                self.stdout.write(
                    f"[{index}/{len(tables)}] {table}: "
                    f"{(time.perf_counter() - started) * 1000:.0f} ms")
