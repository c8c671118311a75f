import time

from django.core.management.base import BaseCommand
from django.db import connection

from stateset.partitions import partitioned_tables


class Command(BaseCommand):
    help = "ANALYZE every table (or the ones named) so the planner and list-total estimates stay current."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("tables", nargs="*", help="Tables to analyze (default: all of this database).")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        tables = options["tables"] or sorted(set(connection.introspection.table_names()) | set(partitioned_tables()))
        with connection.cursor() as cursor:
            for index, table in enumerate(tables, 1):
                started = time.perf_counter()
                cursor.execute(f'ANALYZE "{table}"')
                self.stdout.write(f"[{index}/{len(tables)}] {table}: {(time.perf_counter() - started) * 1000:.0f} ms")
