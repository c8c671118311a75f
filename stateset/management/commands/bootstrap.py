import json
import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from stateset import services
from stateset.keys import lookup


class Command(BaseCommand):
    help = ("Local set-up for `make run`, once: an admin user, a demo API key and demo data. Their "
            "secrets are kept in .data/credentials.json (mode 600) and printed on every run.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-seed", action="store_true", help="Skip seed_demo.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = settings.DATA_DIR / "credentials.json"
        creds = json.loads(path.read_text()) if path.exists() else {}
        User = get_user_model()
        username = creds.get("admin_user", "admin")
        if not User.objects.filter(username=username).exists():
            creds["admin_user"] = username
            creds["admin_password"] = secrets.token_urlsafe(12)
            User.objects.create_superuser(username, f"{username}@localhost",
                                          creds["admin_password"])
        key = creds.get("api_key")
        if not key or lookup(key) is None:
            _, creds["api_key"] = services.api_key_create(name="demo (make run)", scopes=["*"],
                                                             created_by="command:bootstrap")
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(creds, handle, indent=2)
        if not options["no_seed"] and not creds.get("seeded"):
            try:
                call_command("seed_demo")
            except Exception as exc:  # pragma: no cover - seed_demo arrives with the catalog
                self.stderr.write(f"seed_demo skipped: {exc}")
            else:
                creds["seeded"] = True
                with open(path, "w") as handle:
                    json.dump(creds, handle, indent=2)
        password = creds.get("admin_password", "(unchanged: see .data/credentials.json)")
        self.stdout.write(
            "\n  Admin:   http://127.0.0.1:8000/admin/   user "
            f"{creds['admin_user']}  password {password}\n"
            f"  API key: {creds['api_key']}\n"
            "  Try:     curl -H 'X-API-Key: " + creds[
                "api_key"] + "' http://127.0.0.1:8000/api/v1/orders\n"
            "  Docs:    http://127.0.0.1:8000/api/docs/\n"
        )
