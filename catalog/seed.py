"""Demo catalog for ``seed_demo``: the load-test product plus a deterministic, realistic catalog.

Everything comes from a seeded ``random.Random``, and ids are ``uuid5`` of the SKU, so a re-run
produces the same rows and inserts nothing new.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from catalog import services

# The guide's load-test product (SPEC §6).
LOADTEST_PRODUCT_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440002")
LOADTEST_SKU = "TEST-001"
LOADTEST_PRICE = Decimal("29.99")

NAMESPACE = uuid.UUID("2f1c9a52-7c1e-4d8a-9a4e-5b0b8f7d6c31")


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    nouns: tuple[str, ...]
    materials: tuple[str, ...]
    price_range: tuple[int, int]
    weight_grams: tuple[int, int]


CATEGORIES = (
    Category("APP", "Apparel",
             ("T-Shirt", "Hoodie", "Crewneck Sweater", "Rain Jacket", "Polo Shirt", "Chinos",
              "Beanie", "Crew Socks", "Flannel Shirt", "Vest"),
             ("Cotton", "Organic Cotton", "Merino Wool", "Linen", "Fleece", "Recycled Polyester"),
             (12, 180), (80, 900)),
    Category("KIT", "Kitchen",
             ("Chef's Knife", "Cutting Board", "Skillet", "Saucepan", "French Press",
              "Pour-Over Kettle", "Mixing Bowl Set", "Dutch Oven", "Spatula", "Salad Spinner"),
             ("Stainless Steel", "Cast Iron", "Bamboo", "Ceramic", "Walnut", "Carbon Steel"),
             (9, 240), (150, 5200)),
    Category("OUT", "Outdoor",
             ("Daypack", "Water Bottle", "Camping Lantern", "Trekking Poles", "Sleeping Bag",
              "Two-Person Tent", "Headlamp", "Camp Chair", "Dry Bag", "Hammock"),
             ("Ripstop Nylon", "Aluminum", "Titanium", "Canvas", "Recycled Nylon",
              "Stainless Steel"),
             (15, 420), (60, 2800)),
    Category("ELC", "Electronics",
             ("Wireless Earbuds", "USB-C Charger", "Bluetooth Speaker", "Power Bank", "Smart Plug",
              "HDMI Cable", "Mechanical Keyboard", "Wireless Mouse", "Webcam", "Desk Lamp"),
             ("Aluminum", "Matte Black", "Graphite", "Arctic White", "Recycled Plastic"),
             (14, 260), (40, 1200)),
    Category("HOM", "Home",
             ("Throw Blanket", "Scented Candle", "Table Lamp", "Wall Clock", "Planter",
              "Bath Towel Set", "Pillow Cover", "Doormat", "Storage Basket", "Picture Frame"),
             ("Wool", "Soy Wax", "Terracotta", "Linen", "Jute", "Oak"),
             (10, 160), (120, 3500)),
    Category("OFF", "Office",
             ("Notebook", "Fountain Pen", "Desk Organizer", "Monitor Stand", "Laptop Sleeve",
              "Sticky Notes", "Planner", "Pencil Case", "Letter Tray", "Bookends"),
             ("Recycled Paper", "Leather", "Felt", "Walnut", "Aluminum", "Cork"),
             (4, 120), (30, 2000)),
)

ADJECTIVES = ("Classic", "Everyday", "Premium", "Compact", "Deluxe", "Essential", "Heritage",
              "Urban", "Alpine", "Coastal", "Vintage", "Modern", "Ultralight", "Signature", "Trail")
COLORS = ("Black", "Navy", "Olive", "Charcoal", "Sand", "Forest Green", "Burgundy", "Slate",
          "Ivory", "Rust", "Sky Blue")
PHRASES = (
    "Built to last and easy to care for.",
    "Designed in small batches and tested for daily use.",
    "A customer favourite that works as hard as you do.",
    "Thoughtful details and honest materials.",
    "Covered by our two-year warranty.",
    "Ships in plastic-free packaging.",
    "Pairs well with the rest of the collection.",
)


def demo_product_rows(count: int, *, seed: int = 42) -> list[dict[str, Any]]:
    """``count`` products, the same every time for the same ``seed``."""
    rng = random.Random(seed)
    rows = []
    for index in range(1, count + 1):
        category = CATEGORIES[(index - 1) % len(CATEGORIES)]
        noun = rng.choice(category.nouns)
        material = rng.choice(category.materials)
        adjective = rng.choice(ADJECTIVES)
        color = rng.choice(COLORS)
        low, high = category.price_range
        whole = rng.randint(low, high)
        cents = rng.choice(("99", "99", "95", "49", "00"))
        sku = f"{category.code}-{index:05d}"
        description = (
            f"{adjective} {noun.lower()} in {material.lower()}, finished in {color.lower()}. "
                       + " ".join(rng.sample(PHRASES, 2)))
        rows.append({
            "id": uuid.uuid5(NAMESPACE, sku),
            "sku": sku,
            "name": f"{adjective} {material} {noun} – {color}",
            "description": description,
            "price": Decimal(f"{max(whole - 1, 0) if cents != '00' else whole}.{cents}"),
            "currency": "USD",
            # Roughly one in twenty is discontinued, so filters have something to filter.
            "is_active": rng.random() > 0.05,
            "attributes": {"category": category.name, "color": color, "material": material,
                           "weight_grams": rng.randint(*category.weight_grams)},
        })
    return rows


@dataclass
class CatalogSeedResult:
    loadtest_product_id: uuid.UUID
    product_ids: list[uuid.UUID] = field(default_factory=list)  # every demo product, TEST-001 first
    created: int = 0


def demo_product_ids(count: int, *, seed: int = 42) -> list[uuid.UUID]:
    """TEST-001 and the ids of the ``count`` demo products of ``seed`` (what
    :func:`seed_demo_catalog` makes)."""
    return [LOADTEST_PRODUCT_ID, *(row["id"] for row in demo_product_rows(count, seed=seed))]


def seed_demo_catalog(*, count: int = 300, seed: int = 42,
                      log: Callable[[str], None] = lambda _: None) -> CatalogSeedResult:
    """The load-test product (created, or restored to its demo values) and ``count`` demo
    products (missing ones inserted)."""
    _, created = services.product_ensure(
        id=LOADTEST_PRODUCT_ID, sku=LOADTEST_SKU, name="Load Test Product", price=LOADTEST_PRICE,
        currency="USD", is_active=True,
        description="The product of the performance guide's load test (POST /orders).",
        attributes={"category": "Test"},
    )
    rows = demo_product_rows(count, seed=seed)
    inserted = services.products_bulk_create(rows=rows)
    log(f"products: TEST-001 {'created' if created else 'present'}, {inserted} of {len(rows)} demo "
        "products new")
    return CatalogSeedResult(loadtest_product_id=LOADTEST_PRODUCT_ID,
                             product_ids=[LOADTEST_PRODUCT_ID, *(row["id"] for row in rows)],
                             created=inserted + int(created))
