from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from stateset import services
from stateset.errors import DomainError


class Command(BaseCommand):
    help = "Create an API key and print it (it is stored hashed and never shown again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", required=True,
                            help="Comma-separated, e.g. orders:read,orders:write or *. "
                                 "orders:set_prices is granted only by name (no wildcard implies "
                                 "it).")
        parser.add_argument("--key",
                            help="Use this key (sk_...) instead of a random one, e.g. for load "
                                 "tests.")
        parser.add_argument("--expires-at",
                            help="RFC 3339 timestamp after which the key stops working.")
        parser.add_argument("--rate-limit", default="", help='Per-key limit such as "6000/min".')

    def handle(self, *args: Any, **options: Any) -> None:
        expires_at = None
        if options["expires_at"]:
            expires_at = parse_datetime(options["expires_at"])
            if expires_at is None or expires_at.tzinfo is None:
                raise CommandError("--expires-at must be an RFC 3339 timestamp with a time zone.")
        try:
            api_key, raw = services.api_key_create(
                name=options["name"], scopes=options["scopes"].split(","), key=options["key"],
                expires_at=expires_at, rate_limit=options["rate_limit"],
                created_by="command:create_api_key",
            )
        except DomainError as exc:
            raise CommandError(f"{exc.message} {exc.details}") from None
        self.stdout.write(raw)
        self.stderr.write(
            f"created key {api_key.prefix}… '{api_key.name}' with scopes "
            f"{','.join(api_key.scopes)}")
