from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stateset.partitions import ensure_partitions, list_partitions, partitioned_tables


class Command(BaseCommand):
    help = "Create monthly partitions ahead of time for every partitioned table (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--months-ahead", type=int, default=3,
                            help="Months after this one to have partitions for (0–120).")
        parser.add_argument("--months-back", type=int, default=0,
                            help="Months before this one to have partitions for (0–120).")

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ("months_ahead", "months_back"):
            if not 0 <= options[name] <= 120:
                raise CommandError(f"--{name.replace('_', '-')} must be from 0 to 120.")
        tables = partitioned_tables()
        if not tables:
            self.stdout.write("no partitioned tables (run migrate first)")
        for table in tables:
            created = ensure_partitions(table, months_ahead=options["months_ahead"],
                                        months_back=options["months_back"])
            count = len(list_partitions(table))
            self.stdout.write(
                f"{table}: {len(created)} created ({', '.join(created) or 'none'}), {count} "
                "partitions")
