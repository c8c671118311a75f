"""``generate_data``: a benchmark-sized data set, loaded with PostgreSQL ``COPY`` (SPEC §6).

    manage.py generate_data --orders 1000000 --products 100000 [--customers N] [--batch N] [--seed
    N]

What it writes, all consistent with what the services would have written:

- products with readable names and descriptions (so full-text search has something to find),
  SKUs unique in any case (``LMP-0000042``);
- customers (e-mail at ``generated.example.com``, the marker of a generated data set) with one
  default shipping address each;
- three locations and stock rows (every product at the first, every other one at the second), each
  with its ``receive`` movement in the ledger, so that summing the ledger reproduces on-hand;
- orders spread over the last twelve months, oldest first, so numbers from the order-number
  sequence grow with time; 1–3 items each at the product's price (``total_amount`` = sum of the
  items), ``order_created_at`` = the order's ``created_at``, and a ``created`` timeline event.
  Orders are ``delivered`` (fulfilled, paid) or ``cancelled`` (nothing shipped), the two states
  that hold no reservation, so the stock rows need no matching reservations;
- the guide's load-test rows: ``seed_demo`` when it exists, then customer
  ``550e8400-…-440001`` and product ``550e8400-…-440002`` (``TEST-001``, 29.99 USD) with at least
  100,000,000 units on hand.

It loads into a database without generated data and refuses otherwise (use a fresh database: the
bench keeps one per data-set size). Every value is made in Python and streamed with ``COPY``, a
transaction per batch of orders; it ends with ``VACUUM ANALYZE`` of the tables it filled.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction

from catalog.seed import LOADTEST_PRICE, LOADTEST_PRODUCT_ID, LOADTEST_SKU
from customers.seed import LOADTEST_CUSTOMER_ID
from stateset.partitions import ensure_partitions

GENERATOR_VERSION = 2  # 2: order lines carry list_price and net_total
EMAIL_DOMAIN = "generated.example.com"
ACTOR = "generate_data"

LOADTEST_STOCK = 100_000_000

PARTITIONED = ("orders_order", "orders_orderevent", "inventory_stockmovement")

# --- vocabulary -----------------------------------------------------------------------------------

# (SKU prefix, noun, plural, what it is for)
PRODUCT_KINDS = [
    ("WID", "Widget", "widgets", "everyday fixes around the house"),
    ("LMP", "Lamp", "lamps", "reading corners and desks"),
    ("CHR", "Chair", "chairs", "long days at the desk"),
    ("DSK", "Desk", "desks", "home offices and studios"),
    ("MUG", "Mug", "mugs", "coffee and tea"),
    ("KTL", "Kettle", "kettles", "fast boiling water"),
    ("BAG", "Backpack", "backpacks", "commuting and weekend trips"),
    ("BTL", "Bottle", "bottles", "staying hydrated on the go"),
    ("HDP", "Headphones", "headphones", "music and calls"),
    ("SPK", "Speaker", "speakers", "rooms of any size"),
    ("KBD", "Keyboard", "keyboards", "typing all day"),
    ("MSE", "Mouse", "mice", "precise pointing"),
    ("CBL", "Cable", "cables", "charging and data"),
    ("CHG", "Charger", "chargers", "phones, tablets and laptops"),
    ("TNT", "Tent", "tents", "camping in any season"),
    ("JKT", "Jacket", "jackets", "wind and rain"),
    ("SHO", "Sneakers", "sneakers", "running and walking"),
    ("SOK", "Socks", "socks", "everyday comfort"),
    ("PAN", "Frying Pan", "pans", "searing and sauteing"),
    ("KNF", "Chef Knife", "knives", "slicing and dicing"),
    ("BLN", "Blender", "blenders", "smoothies and soups"),
    ("TOS", "Toaster", "toasters", "breakfast"),
    ("PLW", "Pillow", "pillows", "restful sleep"),
    ("BLK", "Blanket", "blankets", "cold evenings"),
    ("TWL", "Towel", "towels", "bath and beach"),
    ("NTB", "Notebook", "notebooks", "notes and sketches"),
    ("PEN", "Pen", "pens", "smooth writing"),
    ("WTC", "Watch", "watches", "keeping time"),
    ("SUN", "Sunglasses", "sunglasses", "bright days"),
    ("UMB", "Umbrella", "umbrellas", "sudden showers"),
    ("PLN", "Planter", "planters", "indoor plants"),
    ("CDL", "Candle", "candles", "a calm evening"),
    ("YGM", "Yoga Mat", "yoga mats", "stretching and yoga"),
    ("DBL", "Dumbbell", "dumbbells", "strength training"),
    ("BKE", "Bike Light", "bike lights", "riding after dark"),
    ("HLM", "Helmet", "helmets", "safe rides"),
    ("GRD", "Garden Hose", "garden hoses", "watering the garden"),
    ("DRL", "Drill", "drills", "DIY projects"),
    ("TAP", "Tape Measure", "tape measures", "measuring twice"),
    ("STO", "Storage Box", "storage boxes", "tidy shelves"),
]
ADJECTIVES = [
    "Ergonomic", "Compact", "Classic", "Modern", "Rustic", "Sleek", "Durable", "Lightweight",
    "Premium", "Essential", "Portable", "Foldable", "Smart", "Wireless", "Heavy-Duty", "Vintage",
    "Minimalist", "Deluxe", "Eco", "Ultra", "Rugged", "Cozy", "Elegant", "Practical",
]
MATERIALS = [
    "Steel", "Bamboo", "Oak", "Walnut", "Cotton", "Linen", "Wool", "Leather", "Ceramic", "Glass",
    "Aluminum", "Copper", "Brass", "Granite", "Silicone", "Canvas", "Recycled", "Carbon",
    "Titanium", "Cork",
]
COLORS = ["Black", "White", "Grey", "Navy", "Olive", "Sand", "Red", "Teal", "Amber", "Forest Green"]
SIZES = ["Small", "Medium", "Large", "XL", "Mini", "Pro", "Max", "Plus"]
FEATURES = [
    "built to last for years", "easy to clean", "backed by a two-year warranty",
    "made from responsibly sourced materials", "designed in our studio", "tested by our customers",
    "packed without plastic", "comfortable in every season", "quiet in use", "simple to assemble",
]
FIRST_NAMES = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra",
    "Paul", "Ashley", "Steven", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kevin", "Carol",
    "Brian", "Amanda", "George", "Melissa", "Timothy", "Deborah", "Ronald", "Laura", "Jason",
    "Rebecca",
    "Ryan", "Sharon", "Jacob", "Cynthia", "Gary", "Kathleen", "Nicholas", "Amy", "Eric", "Angela",
    "Jonathan", "Shirley", "Noah", "Emma", "Liam", "Olivia", "Lucas", "Ava", "Mateo", "Sofia",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen",
    "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
    "Carter", "Roberts", "Kim", "Patel", "Chen", "Singh", "Murphy", "Cook", "Rogers", "Reed",
]
STREETS = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Ave",
           "Lake Rd", "Hill St", "Park Ave", "River Rd", "Sunset Blvd", "Church St", "Highland Ave"]
CITIES = [("Portland", "OR", "97201"), ("Austin", "TX", "73301"), ("Denver", "CO", "80202"),
          ("Chicago", "IL", "60601"), ("Boston", "MA", "02108"), ("Seattle", "WA", "98101"),
          ("Atlanta", "GA", "30303"), ("Phoenix", "AZ", "85001"), ("Miami", "FL", "33101"),
          ("Columbus", "OH", "43004"), ("Nashville", "TN", "37201"), ("San Diego", "CA", "92101"),
          ("Minneapolis", "MN", "55401"), ("Raleigh", "NC", "27601"), ("Madison", "WI", "53703")]
LOCATIONS = [  # (code, name, priority, city index)
    ("DC-NORTH", "North distribution centre", 10, 3),
    ("DC-SOUTH", "South distribution centre", 20, 1),
    ("DC-WEST", "West distribution centre", 30, 5),
]

# --- COPY text format -----------------------------------------------------------------------------

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def esc(text: str) -> str:
    return text.translate(_ESCAPES)


def ts(value: dt.datetime) -> str:
    return value.isoformat()


def cents(amount: int) -> str:
    return f"{amount // 100}.{amount % 100:02d}"


def copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        return esc(json.dumps(value, separators=(",", ":")))
    if isinstance(value, dt.datetime):
        return ts(value)
    return esc(str(value))


class Table:
    """``COPY`` into one model's table. The generator supplies ``columns`` in order; every other
    column takes its Django default (constant for the whole load), its database default
    (``db_default``, e.g. the order number from the sequence) or is generated (never written).
    A new NOT NULL column without a default stops the load with a message instead of a bad row."""

    def __init__(self, model: type[models.Model], columns: list[str], now: dt.datetime):
        self.model = model
        self.table = model._meta.db_table
        known = {f.column: f for f in model._meta.concrete_fields}
        missing = [c for c in columns if c not in known]
        if missing:
            raise CommandError(f"{self.table} has no column(s) {', '.join(missing)}: "
                               "generate_data needs updating for the current models")
        rest: list[tuple[str, str]] = []
        for field in model._meta.concrete_fields:
            if (field.column in columns or getattr(field, "generated", False)
                or field.has_db_default()):
                continue
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value: Any = now
            elif field.has_default():
                value = field.get_default()
            elif field.null:
                value = None
            else:
                raise CommandError(f"{self.table}.{field.column} is NOT NULL without a default: "
                                   "generate_data needs updating for the current models")
            assert field.column is not None  # a concrete field has a column
            rest.append((field.column, copy_text(value)))
        self.columns = [*columns, *(c for c, _ in rest)]
        self.suffix = "".join("\t" + text for _, text in rest) + "\n"
        self.seconds = 0.0  # time spent in COPY (generating rows included)

    def copy(self, rows: Iterable[list[str]], *, flush_every: int = 20_000) -> int:
        """Stream ``rows`` (lists of already formatted column texts) into the table."""
        cols = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        sql = f"COPY {connection.ops.quote_name(self.table)} ({cols}) FROM STDIN"
        suffix, count, buffer = self.suffix, 0, []
        started = time.monotonic()
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                buffer.append("\t".join(row) + suffix)
                count += 1
                if len(buffer) >= flush_every:
                    copy.write("".join(buffer))
                    buffer.clear()
            if buffer:
                copy.write("".join(buffer))
        self.seconds += time.monotonic() - started
        return count


def model(label: str) -> Any:
    """The installed model ``label`` (typed Any: its manager and fields are named by string
    here)."""
    try:
        return apps.get_model(label)
    except LookupError:
        raise CommandError(f"model {label} is not installed: generate_data needs it") from None


class Ids:
    """Reproducible UUIDs from the seeded generator (version 4 layout; version 7 for the ledger,
    which orders its ids by time)."""

    def __init__(self, rng: random.Random):
        self.bits = rng.getrandbits

    def v4(self) -> str:
        return str(uuid.UUID(int=self.bits(128), version=4))

    def v7(self, at: dt.datetime) -> str:
        ms = int(at.timestamp() * 1000) & ((1 << 48) - 1)
        value = (ms << 80) | (0x7 << 76) | (self.bits(12) << 64) | (0b10 << 62) | self.bits(62)
        return str(uuid.UUID(int=value))


# --- the command ----------------------------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Load a benchmark data set (customers, products, stock, orders with items and timeline) "
            "with COPY. Refuses a database that already holds generated data.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, required=True)
        parser.add_argument("--products", type=int, required=True)
        parser.add_argument("--customers", type=int, default=None,
                            help="Default: one per ten orders, at least 100 (capped at 200,000).")
        parser.add_argument("--batch", type=int, default=50_000,
                            help="Orders per COPY transaction.")
        parser.add_argument("--seed", type=int, default=42,
                            help="Random seed (same seed, same data).")
        parser.add_argument("--months", type=int, default=12,
                            help="Spread orders over this many months.")

    # -- helpers -------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def progress(self, what: str, done: int, total: int, started: float) -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate else 0
        self.say(f"  {what}: {done:,}/{total:,} ({done * 100 // max(total, 1)}%)  "
                 f"{rate:,.0f}/s  elapsed {elapsed:.0f}s  eta {eta:.0f}s")

    # -- main ----------------------------------------------------------------------------------

    def handle(self, *args: Any, **options: Any) -> None:
        n_orders, n_products = options["orders"], options["products"]
        n_customers = options["customers"]
        if n_customers is None:
            n_customers = min(max(n_orders // 10, 100), 200_000)
        if n_orders < 0 or n_products < 1 or n_customers < 1 or options["batch"] < 1:
            raise CommandError(
                "--products and --customers must be >= 1, --orders >= 0, --batch >= 1")
        self.rng = random.Random(options["seed"])
        self.ids = Ids(self.rng)
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.Product = model("catalog.Product")
        self.Customer = model("customers.Customer")
        self.Address = model("customers.Address")
        self.Location = model("inventory.Location")
        self.InventoryItem = model("inventory.InventoryItem")
        self.StockMovement = model("inventory.StockMovement")
        self.Order = model("orders.Order")
        self.OrderItem = model("orders.OrderItem")
        self.OrderEvent = model("orders.OrderEvent")

        existing = self.Customer.objects.filter(email__endswith="@" + EMAIL_DOMAIN).count()
        if existing:
            raise CommandError(
                f"this database already holds generated data ({existing:,} customers "
                f"@{EMAIL_DOMAIN}); "
                "generate_data loads into a database without it: use a fresh database "
                "(make bench keeps one per data-set size)")

        started = time.monotonic()
        self.say(
            f"generate_data: {n_orders:,} orders, {n_products:,} products, {n_customers:,} "
            "customers "
                 f"into database {connection.settings_dict['NAME']!r}")
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
        for table in PARTITIONED:
            created = ensure_partitions(table, months_back=options["months"] + 1, months_ahead=3)
            if created:
                self.say(f"  partitions of {table}: created {len(created)}")
        self.loadtest_rows()

        loaded = [m._meta.db_table
                  for m in (self.Product, self.Customer, self.Address, self.Location,
                                             self.InventoryItem, self.StockMovement, self.Order,
                                             self.OrderItem, self.OrderEvent)]
        with self.foreign_keys_deferred_to_the_end(loaded), self.indexes_built_at_the_end(loaded):
            products = self.load_products(n_products)
            customers = self.load_customers(n_customers)
            self.load_stock(products)
            self.load_orders(n_orders, options["batch"], products, customers, options["months"])
        self.vacuum_analyze(loaded)
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")
        self.say(f"generate_data: done in {time.monotonic() - started:.0f}s")

    @contextmanager
    def foreign_keys_deferred_to_the_end(self, tables: list[str]) -> Iterator[None]:
        """Drop the foreign keys of the loaded tables and add them back afterwards (PostgreSQL's
        "Populating a Database" advice): one validating join per key at the end instead of a
        trigger per row, which for the composite keys to the partitioned ``orders_order`` is most
        of the load's time. Adding them back checks every row, so the data set is proven
        consistent; they are restored even when the load fails."""
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
                FROM pg_constraint c
                WHERE c.contype = 'f' AND c.conparentid = 0 AND c.conrelid = ANY(%s::regclass[])
                ORDER BY 1, 2
                """,
                [tables],
            )
            keys = cursor.fetchall()
            with transaction.atomic():
                for table, name, _definition in keys:
                    cursor.execute(
                        f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
        try:
            yield
        finally:
            started = time.monotonic()
            with connection.cursor() as cursor:
                for table, name, definition in keys:
                    cursor.execute(
                        f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} "
                                   f"{definition}")
            self.say(
                f"  {len(keys)} foreign keys added back and checked: "
                f"{time.monotonic() - started:.0f}s")

    @contextmanager
    def indexes_built_at_the_end(self, tables: list[str]) -> Iterator[None]:
        """Build the plain (non-unique) indexes of the loaded ordinary tables once, after the load,
        instead of updating them row by row (the products' full-text GIN index above all).
        Unique indexes stay: they guard the data while it loads. Partitioned tables keep theirs
        (their rows arrive in time order, so those indexes grow at the right edge)."""
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                WHERE i.indrelid = ANY(%s::regclass[]) AND t.relkind = 'r'
                  AND NOT i.indisunique AND NOT i.indisprimary
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                ORDER BY 1
                """,
                [tables],
            )
            indexes = cursor.fetchall()
            with transaction.atomic():
                for name, _definition in indexes:
                    cursor.execute(f"DROP INDEX {name}")
        try:
            yield
        finally:
            started = time.monotonic()
            with connection.cursor() as cursor:
                cursor.execute("SET maintenance_work_mem = '256MB'")
                for _name, definition in indexes:
                    cursor.execute(definition)
                cursor.execute("RESET maintenance_work_mem")
            self.say(f"  {len(indexes)} indexes built: {time.monotonic() - started:.0f}s")

    # -- the guide's load-test rows --------------------------------------------------------------

    def loadtest_rows(self) -> None:
        if "seed_demo" in get_commands():
            self.say("  seed_demo …")
            call_command("seed_demo", stdout=self.stdout, stderr=self.stderr)
        from catalog import services as catalog_services
        from customers import services as customer_services

        if not self.Customer.objects.filter(pk=LOADTEST_CUSTOMER_ID).exists():
            customer_services.customer_ensure(id=LOADTEST_CUSTOMER_ID, email="loadtest@example.com",
                                              first_name="Load", last_name="Test")
        if not self.Product.objects.filter(pk=LOADTEST_PRODUCT_ID).exists():
            catalog_services.product_ensure(id=LOADTEST_PRODUCT_ID, sku=LOADTEST_SKU,
                                            name="Test Product",
                                            price=LOADTEST_PRICE,
                                            description="The load-test product.")
        product = self.Product.objects.get(pk=LOADTEST_PRODUCT_ID)
        if product.sku != LOADTEST_SKU or product.price != LOADTEST_PRICE or not product.is_active:
            raise CommandError(f"product {LOADTEST_PRODUCT_ID} is {product.sku} at {product.price} "
                               f"(active={product.is_active}); the load test needs {LOADTEST_SKU} "
                               "at "
                               f"{LOADTEST_PRICE}, active")
        self.locations = self.ensure_locations()
        self.ensure_loadtest_stock(product)

    def ensure_locations(self) -> list[Any]:
        found = []
        for code, name, priority, city in LOCATIONS:
            location = self.Location.objects.filter(code__iexact=code).first()
            if location is None:
                city_name, region, postal = CITIES[city]
                location = self.Location.objects.create(
                    code=code, name=name, priority=priority,
                    address={"line1": "1 Logistics Way", "city": city_name, "region": region,
                             "postal_code": postal, "country": "US"})
            found.append(location)
        return found

    def ensure_loadtest_stock(self, product: Any) -> None:
        """At least LOADTEST_STOCK units of TEST-001 available at one location; the top-up is a
        ``receive`` movement like any other, so the ledger still adds up."""
        items = list(
            self.InventoryItem.objects.filter(product=product).order_by("location__priority"))
        if sum(item.available for item in items) >= LOADTEST_STOCK:
            return
        from inventory import services as inventory_services

        location_id = items[0].location_id if items else self.locations[0].id
        need = LOADTEST_STOCK - sum(item.available for item in items
                                    if item.location_id == location_id)
        # One receive movement: lines of one row are summed (each line at most MAX_QUANTITY).
        step = inventory_services.MAX_QUANTITY
        item = inventory_services.stock_receive_many(lines=[
            inventory_services.StockLine(product_id=product.id, location_id=location_id,
                                         quantity=min(step, need - start))
            for start in range(0, need, step)], reason="load-test stock (generate_data)",
                                                     actor=ACTOR)[0]
        self.say(f"  {LOADTEST_SKU}: {item.on_hand:,} on hand at {item.location_id}")

    # -- catalog and customers ---------------------------------------------------------------

    def load_products(self, n: int) -> list[tuple[str, str, str, int, bool]]:
        """Returns (id, sku, name, price in cents, is_active) per product."""
        rng, started = self.rng, time.monotonic()
        table = Table(self.Product, ["id", "sku", "name", "description", "price", "currency",
                                     "is_active", "attributes", "created_at", "updated_at"],
                      self.now)
        products: list[tuple[str, str, str, int, bool]] = []
        span = 730 * 86400

        def rows() -> Iterator[list[str]]:
            for i in range(1, n + 1):
                prefix, noun, plural, purpose = PRODUCT_KINDS[rng.randrange(len(PRODUCT_KINDS))]
                adjective, material = rng.choice(ADJECTIVES), rng.choice(MATERIALS)
                color = rng.choice(COLORS)
                name = f"{adjective} {material} {noun}"
                if rng.random() < 0.5:
                    name += f" {rng.choice(SIZES)}"
                name += f" — {color}"
                description = (
                    f"A {adjective.lower()} {noun.lower()} in {material.lower()} for {purpose}. "
                               f"Our {plural} are {rng.choice(FEATURES)} and "
                               f"{rng.choice(FEATURES)}.")
                price = int(min(max(rng.lognormvariate(3.4, 0.9), 1.0),
                                2000.0) * 100) // 100 * 100 + 99
                sku = f"{prefix}-{i:07d}"
                pid = self.ids.v4()
                active = rng.random() < 0.97
                products.append((pid, sku, name, price, active))
                created = ts(self.now - dt.timedelta(seconds=rng.randrange(span)))
                yield [pid, sku, esc(name), esc(description), cents(price), "USD",
                       "t" if active else "f",
                       esc(json.dumps({"color": color, "material": material})), created, created]
                if i % 50_000 == 0:
                    self.progress("products", i, n, started)

        with transaction.atomic():
            table.copy(rows())
        self.progress("products", n, n, started)
        return products

    def load_customers(self, n: int) -> list[tuple[str, str]]:
        """Returns (id, shipping address JSON as COPY text) per customer."""
        rng, started = self.rng, time.monotonic()
        customers: list[tuple[str, str]] = []
        rows_c: list[list[str]] = []
        rows_a: list[list[str]] = []
        span = 900 * 86400
        for i in range(1, n + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            cid = self.ids.v4()
            created = ts(self.now - dt.timedelta(seconds=400 * 86400 + rng.randrange(span)))
            city, region, postal = CITIES[rng.randrange(len(CITIES))]
            line1 = f"{rng.randrange(1, 9999)} {rng.choice(STREETS)}"
            address = {"name": f"{first} {last}", "line1": line1, "line2": "", "city": city,
                       "region": region, "postal_code": postal, "country": "US"}
            phone = f"+1-555-{rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}"
            rows_c.append([cid, f"{first.lower()}.{last.lower()}.{i}@{EMAIL_DOMAIN}", first, last,
                           phone, created, created])
            rows_a.append([self.ids.v4(), cid, "shipping", f"{first} {last}", line1, city, region,
                           postal, "US", phone, "t", created])
            customers.append((cid, esc(json.dumps(address, separators=(",", ":")))))
        with transaction.atomic():
            Table(self.Customer, ["id", "email", "first_name", "last_name", "phone", "created_at",
                                  "updated_at"], self.now).copy(rows_c)
            Table(self.Address, ["id", "customer_id", "kind", "name", "line1", "city", "region",
                                 "postal_code", "country", "phone", "is_default", "created_at"],
                  self.now).copy(rows_a)
        self.progress("customers", n, n, started)
        return customers

    # -- stock ------------------------------------------------------------------------------------

    def load_stock(self, products: list[tuple[str, str, str, int, bool]]) -> None:
        """Every product at the first location, every other one at the second; one ``receive``
        movement per row, dated before the first order."""
        rng, started = self.rng, time.monotonic()
        received = self.now - dt.timedelta(days=380)
        items, moves = [], []
        stamp = ts(received)
        for index, (pid, sku, *_rest) in enumerate(products):
            for location in self.locations[: 2 if index % 2 == 0 else 1]:
                on_hand = rng.randrange(5_000, 50_000)
                item_id = self.ids.v4()
                items.append([item_id, pid, str(location.pk), sku, str(on_hand), "0",
                              str(rng.randrange(10, 100)), str(rng.randrange(0, 20)), stamp, stamp])
                moves.append([self.ids.v7(received), item_id, "receive", str(on_hand), "0",
                              str(on_hand), "0", "initial stock", ACTOR, stamp])
        with transaction.atomic():
            Table(self.InventoryItem,
                  ["id", "product_id", "location_id", "sku", "on_hand", "reserved",
                                       "reorder_point", "safety_stock", "created_at", "updated_at"],
                  self.now).copy(items)
            Table(self.StockMovement,
                  ["id", "inventory_item_id", "kind", "on_hand_delta", "reserved_delta",
                                       "on_hand_after", "reserved_after", "reason", "actor",
                   "created_at"],
                  self.now).copy(moves)
        self.progress("stock rows (+ ledger)", len(items), len(items), started)

    # -- orders -----------------------------------------------------------------------------------

    def load_orders(self, n: int, batch: int, products: list[tuple[str, str, str, int, bool]],
                    customers: list[tuple[str, str]], months: int) -> None:
        if not n:
            return
        rng, started = self.rng, time.monotonic()
        order_table = Table(self.Order, [
            "id", "created_at", "customer_id", "status", "payment_status", "fulfillment_status",
            "currency",
            "subtotal", "tax_total", "shipping_total", "discount_total", "total_amount",
            "shipping_address", "billing_address", "updated_at"], self.now)
        if "order_number" in order_table.columns:
            raise CommandError(
                "orders_order.order_number has no database default: generate_data relies "
                               "on orders_next_number() to keep the sequence right")
        item_table = Table(self.OrderItem, [
            "id", "order_id", "order_created_at", "product_id", "sku", "name", "quantity",
            "unit_price",
            "list_price", "total_price", "net_total", "quantity_fulfilled", "quantity_returned"],
                           self.now)
        event_table = Table(self.OrderEvent, [
            "id", "created_at", "order_id", "order_created_at", "kind", "to_status", "message",
            "actor"], self.now)
        # Only active products are ordered (the app refuses inactive ones).
        product_rows = [(pid, esc(sku), esc(name), price) for pid, sku, name, price,
                        active in products if active]
        start = self.now - dt.timedelta(days=round(months * 30.4))
        span = (self.now - dt.timedelta(minutes=5) - start).total_seconds()
        done = items_done = 0
        while done < n:
            size = min(batch, n - done)
            # Oldest first across batches, so the order-number sequence follows created_at.
            lo, hi = span * done / n, span * (done + size) / n
            offsets = sorted(rng.uniform(lo, hi) for _ in range(size))
            orders = []
            for offset in offsets:
                created = start + dt.timedelta(seconds=offset)
                cid, address = customers[rng.randrange(len(customers))]
                lines = []
                for product in rng.sample(product_rows, rng.choices((1, 2, 3), (50, 35, 15))[0]):
                    lines.append((product, rng.choices((1, 2, 3, 4), (60, 25, 10, 5))[0]))
                delivered = rng.random() < 0.93
                orders.append((self.ids.v4(), ts(created), cid, address, lines, delivered))
            with transaction.atomic():
                order_table.copy(self._order_rows(orders))
                items_done += item_table.copy(self._item_rows(orders))
                event_table.copy(self._event_rows(orders))
            done += size
            self.progress(f"orders ({items_done:,} items)", done, n, started)
        self.say(
            f"  COPY seconds: orders {order_table.seconds:.1f}, items {item_table.seconds:.1f}, "
                 f"events {event_table.seconds:.1f}")

    def _order_rows(self, orders: list[Any]) -> Iterator[list[str]]:
        for oid, created, cid, address, lines, delivered in orders:
            total = cents(sum(price * quantity for (_p, _s, _n, price), quantity in lines))
            status = (("delivered", "paid", "fulfilled") if delivered
                      else ("cancelled", "pending", "unfulfilled"))
            yield [oid, created, cid, *status, "USD", total, "0.00", "0.00", "0.00", total, address,
                   address, created]

    def _item_rows(self, orders: list[Any]) -> Iterator[list[str]]:
        v4 = self.ids.v4
        for oid, created, _cid, _address, lines, delivered in orders:
            for (pid, sku, name, price), quantity in lines:
                q = str(quantity)
                total = cents(price * quantity)
                yield [v4(), oid, created, pid, sku, name, q, cents(price), cents(price), total,
                       total, q if delivered else "0", "0"]

    def _event_rows(self, orders: list[Any]) -> Iterator[list[str]]:
        v4 = self.ids.v4
        for oid, created, *_ in orders:
            yield [v4(), created, oid, created, "created", "pending", "Order created", ACTOR]

    # -- statistics -------------------------------------------------------------------------------

    def vacuum_analyze(self, tables: list[str]) -> None:
        started = time.monotonic()
        # VACUUM sets the visibility map (index-only scans), ANALYZE the planner statistics. VACUUM
        # cannot run inside a transaction (a test's), ANALYZE can.
        command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"{command} {connection.ops.quote_name(table)}")
        self.say(f"  {command} of {len(tables)} tables: {time.monotonic() - started:.0f}s")
