"""``manage.py seed_demo``: demo data, idempotent (SPEC §6).

Runs its sections in order. Each is a function ``(ctx: SeedContext) -> result``; the results of
earlier sections are in ``ctx.results[name]`` (``ctx.results["catalog"].product_ids`` lists
TEST-001 and every demo product). To add a section, write such a function and append it to
``SECTIONS``, e.g. for stock::

    def seed_inventory(ctx):
        from inventory.seed import seed_demo_inventory
        return seed_demo_inventory(product_ids=ctx.results["catalog"].product_ids,
                                   seed=ctx.seed, log=ctx.log)

    SECTIONS.append(("inventory", seed_inventory))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stateset.errors import DomainError


@dataclass
class SeedContext:
    seed: int
    products: int
    customers: int
    log: Callable[[str], None]
    results: dict[str, Any] = field(default_factory=dict)


# --- sections ------------------------------------------------------------------------------------


def seed_customers(ctx: SeedContext) -> Any:
    """Load-test customer 550e8400-…-0001 (loadtest@example.com) and demo customers with
    addresses."""
    from customers.seed import seed_demo_customers

    return seed_demo_customers(count=ctx.customers, seed=ctx.seed, log=ctx.log)


def seed_catalog(ctx: SeedContext) -> Any:
    """Load-test product 550e8400-…-0002 (TEST-001, 29.99 USD, active) and the demo catalog."""
    from catalog.seed import seed_demo_catalog

    return seed_demo_catalog(count=ctx.products, seed=ctx.seed, log=ctx.log)


def seed_inventory(ctx: SeedContext) -> Any:
    """Locations MAIN and EAST; ample stock of TEST-001 and some of every other demo product (the
    shop's own products are left as they are)."""
    from catalog.seed import demo_product_ids
    from inventory.seed import seed_demo_stock

    catalog = ctx.results.get("catalog")
    ids = (catalog.product_ids if catalog is not None
           else demo_product_ids(ctx.products, seed=ctx.seed))
    result = seed_demo_stock(product_ids=ids)
    ctx.log(f"inventory: {result}")
    return result


SECTIONS: list[tuple[str, Callable[[SeedContext], Any]]] = [
    ("customers", seed_customers),
    ("catalog", seed_catalog),
    ("inventory", seed_inventory),
]


class Command(BaseCommand):
    help = ("Load demo data: the performance guide's load-test customer and product, a catalog and "
            "customers with addresses. Safe to re-run: existing rows are kept, missing ones added.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--products", type=int, default=300,
                            help="Demo products (default 300).")
        parser.add_argument("--customers", type=int, default=200,
                            help="Demo customers (default 200).")
        parser.add_argument("--seed", type=int, default=42,
                            help="Random seed (same seed, same data).")
        parser.add_argument("--only", nargs="+", choices=[name for name, _ in SECTIONS],
                            help="Run only these sections (and nothing they depend on).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["products"] < 0 or options["customers"] < 0:
            raise CommandError("--products and --customers must be zero or more.")
        ctx = SeedContext(seed=options["seed"], products=options["products"],
                          customers=options["customers"],
                          log=lambda line: self.stdout.write(f"  {line}"))
        wanted = set(options["only"] or [name for name, _ in SECTIONS])
        for name, section in SECTIONS:
            if name not in wanted:
                continue
            self.stdout.write(f"[{name}]")
            started = time.monotonic()
            try:
                ctx.results[name] = section(ctx)
            except DomainError as exc:
                raise CommandError(f"{name}: {exc.message} {exc.details or ''}".strip()) from exc
            self.stdout.write(f"  done in {time.monotonic() - started:.1f}s")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
