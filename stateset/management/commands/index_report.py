from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection

UNUSED = """
SELECT s.relname, s.indexrelname, s.idx_scan, pg_size_pretty(pg_relation_size(s.indexrelid))
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
ORDER BY pg_relation_size(s.indexrelid) DESC, s.relname
"""
# Tables read mostly by sequential scans while holding many rows: an index is probably missing.
MISSING = """
SELECT relname, seq_scan, seq_tup_read, COALESCE(idx_scan, 0), n_live_tup
FROM pg_stat_user_tables
WHERE seq_scan > 0 AND n_live_tup > 10000 AND seq_tup_read / GREATEST(seq_scan, 1) > 10000
  AND COALESCE(idx_scan, 0) < seq_scan
ORDER BY seq_tup_read DESC
LIMIT 20
"""


class Command(BaseCommand):
    help = "Unused indexes and tables that look like they miss one (pg_stat_user_indexes/tables)."

    def handle(self, *args: Any, **options: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute(UNUSED)
            unused = cursor.fetchall()
            cursor.execute(MISSING)
            missing = cursor.fetchall()
        self.stdout.write(
            f"Unused indexes (idx_scan = 0 since the statistics were reset): {len(unused)}")
        for table, index, _scans, size in unused:
            self.stdout.write(f"  {table}.{index}  {size}")
        self.stdout.write(f"Tables read by large sequential scans: {len(missing)}")
        for table, seq_scan, seq_read, idx_scan, rows in missing:
            self.stdout.write(
                f"  {table}: {seq_scan} seq scans read {seq_read} rows; {idx_scan} index scans; "
                f"{rows} rows")
