"""``manage.py orders_rollup --days 400``: backfill the dashboard's daily rollup of orders (after
an import, a restore, or the first deploy), a month per transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from orders import rollups

CHUNK_DAYS = 31


class Command(BaseCommand):
    help = "Recompute the daily order rollup (orders_orderday) for the last N days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=400,
                            help="How many UTC days back from today (default 400).")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days < 1:
            self.stderr.write("--days must be at least 1")
            raise SystemExit(2)
        today = timezone.now().astimezone(dt.UTC).date()
        rows, done = 0, 0
        while done < days:
            chunk = min(CHUNK_DAYS, days - done)
            rows += rollups.order_days_refresh(days=chunk,
                                               until=today - dt.timedelta(days=done))
            done += chunk
        self.stdout.write(f"Rolled up {days} day(s): {rows} row(s).")
