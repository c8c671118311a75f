from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from inventory import services


class Command(BaseCommand):
    help = (
        "Expire reservations whose expires_at has passed and give their stock back (what beat runs "
        "every minute).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500,
                            help="Reservations per transaction.")

    def handle(self, *args: Any, **options: Any) -> None:
        expired = services.reservations_expire(batch_size=options["batch_size"])
        self.stdout.write(f"expired {expired} reservation(s)")
