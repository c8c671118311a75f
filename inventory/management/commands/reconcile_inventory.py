from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from inventory import services


class Command(BaseCommand):
    help = (
        "Recompute each inventory row's reserved quantity from its active reservations and report "
        "drift; --fix repairs it (ledger rows of kind adjust, reason 'reconcile'); --ledger also "
        "checks "
        "that every row's counters equal the sum of its ledger movements (a full pass over the "
        "ledger). It also reports products whose backorders wait beside sellable stock; --fix "
        "serves those queues, oldest order first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fix", action="store_true", help="Repair the drift found.")
        parser.add_argument("--ledger", action="store_true",
                            help="Also compare counters with the ledger.")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        fix = options["fix"]

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  fixed batch: {done}/{total}")

        drifts = services.inventory_reconcile(fix=fix, batch_size=options["batch_size"],
                                              progress=progress if fix else None)
        for d in drifts:
            state = (("fixed" if d.fixed else "NOT FIXED (reservations exceed on_hand)") if fix
                     else "drift")
            self.stdout.write(
                f"{state}: {d.sku} @ {d.location_id} (row {d.inventory_item_id}): "
                f"reserved {d.reserved}, active reservations hold {d.expected_reserved}, on_hand "
                f"{d.on_hand}"
            )
        summary = f"{len(drifts)} row(s) drifted"
        if fix:
            summary += f", {sum(1 for d in drifts if d.fixed)} fixed"
        self.stdout.write(summary if drifts
                          else "no drift: every row's reserved matches its reservations")
        stranded = services.backorders_stranded(fix=fix)
        for product in stranded:
            done = f", {product.allocated} allocated" if fix else ""
            self.stdout.write(
                f"stranded backorders: {product.sku} (product {product.product_id}): "
                f"{product.waiting} unit(s) waiting, {product.sellable} sellable{done}")
        self.stdout.write(f"{len(stranded)} product(s) with stranded backorders" if stranded
                          else "no stranded backorders: no queue waits beside sellable stock")
        if options["ledger"]:
            self.stdout.write("checking the ledger ...")
            mismatches = services.inventory_ledger_drift()
            for m in mismatches:
                self.stdout.write(
                    f"ledger mismatch: {m['sku']} (row {m['inventory_item_id']}): on_hand "
                    f"{m['on_hand']} vs "
                    f"ledger {m['ledger_on_hand']}, reserved {m['reserved']} vs ledger "
                    f"{m['ledger_reserved']}"
                )
            self.stdout.write(f"{len(mismatches)} ledger mismatch(es)")
