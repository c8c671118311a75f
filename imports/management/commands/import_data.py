"""``manage.py import_data --kind products FILE``: the import service of ``POST /imports``, run in
this process with a progress bar (for operators loading a catalog, a customer list or a count)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from imports import services
from imports.models import Import
from stateset.errors import DomainError

BAR = 30


class Command(BaseCommand):
    help = (
        "Import a CSV (header row) or NDJSON file of products, customers or inventory counts "
        "through the "
            "same services as POST /imports: per-row errors are reported and skipped, re-running "
            "the file "
            "changes nothing. Exits 1 when the file is refused.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file",
                            help="Path of the file (.csv, or .ndjson/.jsonl for NDJSON); - reads "
                                 "stdin (CSV).")
        parser.add_argument("--kind", required=True, choices=Import.Kind.values)
        parser.add_argument("--mode", default=Import.Mode.UPSERT, choices=Import.Mode.values)
        parser.add_argument("--dry-run", action="store_true",
                            help="Check every row and write nothing.")
        parser.add_argument("--format", choices=Import.Format.values,
                            help="Default: from the file's extension.")
        parser.add_argument("--errors", type=int, default=20,
                            help="How many row errors to print (default 20).")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["file"]
        file_format = (options["format"]
                       or ("ndjson" if Path(name).suffix.lower() in (".ndjson", ".jsonl")
                           else "csv"))
        self.started = time.monotonic()
        try:
            stream = sys.stdin.buffer if name == "-" else Path(name).open("rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc.strerror}") from None
        try:
            with stream:
                record = services.import_create(kind=options["kind"], stream=stream,
                                                file_format=file_format,
                                                mode=options["mode"], dry_run=options["dry_run"],
                                                actor="command:import_data",
                                                file_name=Path(name).name, enqueue=False)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        progress = None if options["no_progress"] else self.progress
        finished = services.import_run(import_id=record.id, progress=progress)
        if progress:
            self.stderr.write("")
        if finished is None:
            raise CommandError(f"import {record.id} did not run (another worker holds it)")
        self.report(finished, options["errors"])
        if finished.status == Import.Status.FAILED:
            raise CommandError(f"the file was refused: {finished.errors[0]['message']}")

    def progress(self, record: Import) -> None:
        total = record.rows_total or 0
        done = record.rows_done
        filled = BAR * done // total if total else 0
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.stderr.write(f"\r  [{'#' * filled}{'.' * (BAR - filled)}] {done:,}/{total:,} rows  "
                          f"{done / elapsed:,.0f} rows/s  {record.failed:,} failed", ending="")
        self.stderr.flush()

    def report(self, record: Import, show: int) -> None:
        what = "dry run (nothing written)" if record.dry_run else "import"
        seconds = time.monotonic() - self.started
        self.stdout.write(f"{record.kind} {what} {record.id}: {record.status} in {seconds:.1f}s — "
                          f"{record.rows_done:,} rows: {record.created:,} created, "
                          f"{record.updated:,} updated, "
                          f"{record.unchanged:,} unchanged, {record.failed:,} failed")
        for error in record.errors[:show]:
            where = f"row {error['row']}" if error.get("row") is not None else "file"
            column = f" [{error['column']}]" if error.get("column") else ""
            self.stdout.write(f"  {where}{column}: {error['code']}: {error['message']}")
        if record.error_count > show:
            self.stdout.write(
                f"  ... {record.error_count - show:,} more (GET /api/v1/imports/{record.id})")
