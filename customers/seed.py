"""Demo customers for ``seed_demo``: the load-test customer plus deterministic, realistic customers
with addresses. ``uuid5`` ids make a re-run insert nothing."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from customers import selectors, services
from customers.models import Address

# The guide's load-test customer (SPEC §6).
LOADTEST_CUSTOMER_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440001")
LOADTEST_EMAIL = "loadtest@example.com"

NAMESPACE = uuid.UUID("8d7f0a2e-3b7c-4f61-9f0e-1c2d3e4f5a6b")

FIRST_NAMES = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Mateo", "Isabella",
               "Lucas", "Mia", "Levi", "Amelia", "Ethan", "Harper", "James", "Evelyn", "Benjamin",
               "Aria", "Henry", "Chloe", "Samuel", "Priya", "Arjun", "Yuki", "Hiroshi", "Fatima",
               "Omar", "Ingrid", "Lars", "Camille", "Louis", "Greta", "Felix", "Sofia", "Diego",
               "Aisha", "Kwame", "Mei", "Wei")
LAST_NAMES = ("Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Martinez",
              "Lopez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin",
              "Lee",
              "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Young", "Patel", "Nguyen",
              "Kim", "Schmidt", "Müller", "Dubois", "Rossi", "Jensen", "Novak", "O'Brien", "Tanaka",
              "Okafor", "Silva", "Kowalski", "Andersson", "Murphy")
DOMAINS = ("example.com", "example.org", "example.net")

# (city, region, postal code, country)
CITIES = (
    ("New York", "NY", "10001", "US"), ("Austin", "TX", "78701", "US"),
    ("Seattle", "WA", "98101", "US"),
    ("Denver", "CO", "80202", "US"), ("Chicago", "IL", "60601", "US"),
    ("Portland", "OR", "97205", "US"),
    ("Boston", "MA", "02108", "US"), ("Atlanta", "GA", "30303", "US"),
    ("San Diego", "CA", "92101", "US"),
    ("Toronto", "ON", "M5V 2T6", "CA"), ("Vancouver", "BC", "V6B 1A1", "CA"),
    ("London", "", "EC1A 1BB", "GB"), ("Manchester", "", "M1 1AE", "GB"),
    ("Berlin", "", "10115", "DE"), ("Munich", "", "80331", "DE"),
    ("Paris", "", "75001", "FR"), ("Lyon", "", "69002", "FR"),
    ("Sydney", "NSW", "2000", "AU"), ("Melbourne", "VIC", "3000", "AU"),
    ("Amsterdam", "", "1012 AB", "NL"), ("Dublin", "", "D02 X285", "IE"),
)
STREETS = ("Main Street", "Oak Avenue", "Maple Drive", "Cedar Lane", "Park Road", "High Street",
           "Elm Street", "Lakeview Terrace", "Hillcrest Road", "River Road", "Station Road",
           "Church Lane", "Market Street", "Sunset Boulevard", "King Street")


def _email_local(first: str, last: str, index: int) -> str:
    ascii_last = last.replace("ü", "ue").replace("'", "").lower()
    return f"{first.lower()}.{ascii_last}{index}"


def _address(rng: random.Random, *, kind: str, name: str, phone: str) -> dict[str, Any]:
    city, region, postal_code, country = rng.choice(CITIES)
    apartment = rng.random() < 0.3
    return {"kind": kind, "name": name, "line1": f"{rng.randint(1, 2400)} {rng.choice(STREETS)}",
            "line2": f"Apt {rng.randint(1, 40)}{rng.choice('ABCD')}" if apartment else "",
            "city": city, "region": region, "postal_code": postal_code, "country": country,
            "phone": phone, "is_default": True}


def demo_customer_rows(count: int, *, seed: int = 42) -> tuple[list[dict[str, Any]],
                                                               list[dict[str, Any]]]:
    """(customers, addresses): ``count`` customers, each with a default shipping address and about
    a third with a separate default billing address. The same every time for the same ``seed``."""
    rng = random.Random(seed)
    customers, addresses = [], []
    for index in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{_email_local(first, last, index)}@{rng.choice(DOMAINS)}"
        customer_id = uuid.uuid5(NAMESPACE, email)
        phone = f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        customers.append({"id": customer_id, "email": email, "first_name": first, "last_name": last,
                          "phone": phone, "metadata": {"source": "seed_demo",
                                                       "segment": rng.choice(("retail", "wholesale",
                                                                              "vip"))}})
        kinds = [Address.Kind.SHIPPING] + ([Address.Kind.BILLING] if rng.random() < 0.35 else [])
        for kind in kinds:
            addresses.append({"id": uuid.uuid5(NAMESPACE, f"{email}/{kind}"),
                              "customer_id": customer_id,
                              **_address(rng, kind=kind, name=f"{first} {last}", phone=phone)})
    return customers, addresses


@dataclass
class CustomerSeedResult:
    loadtest_customer_id: uuid.UUID
    customer_ids: list[uuid.UUID] = field(default_factory=list)  # the load-test customer first
    created: int = 0


def seed_demo_customers(*, count: int = 200, seed: int = 42,
                        log: Callable[[str], None] = lambda _: None) -> CustomerSeedResult:
    """The load-test customer with default shipping and billing addresses, and ``count`` demo
    customers with addresses (missing ones inserted)."""
    _, created = services.customer_ensure(id=LOADTEST_CUSTOMER_ID, email=LOADTEST_EMAIL,
                                          first_name="Load", last_name="Test",
                                          metadata={"source": "seed_demo"})
    loadtest_addresses = [
        {"id": uuid.uuid5(NAMESPACE, f"{LOADTEST_EMAIL}/{kind}"),
         "customer_id": LOADTEST_CUSTOMER_ID,
         "kind": kind, "name": "Load Test", "line1": "1 Benchmark Way", "line2": "",
         "city": "Austin",
         "region": "TX", "postal_code": "78701", "country": "US", "phone": "", "is_default": True}
        for kind in (Address.Kind.SHIPPING, Address.Kind.BILLING)
    ]
    customers, addresses = demo_customer_rows(count, seed=seed)
    inserted = services.customers_bulk_create(rows=customers)
    # Only for customers that are ours: a pre-existing customer with one of the demo emails keeps
    # its own id and addresses.
    mine = set(selectors.existing_customer_ids(customer_ids=[row["id"] for row in customers]))
    new_addresses = services.addresses_bulk_create(
        rows=loadtest_addresses + [row for row in addresses if row["customer_id"] in mine]
    )
    log(f"customers: load-test customer {'created' if created else 'present'}, "
        f"{inserted} of {len(customers)} demo customers and {new_addresses} addresses new")
    return CustomerSeedResult(loadtest_customer_id=LOADTEST_CUSTOMER_ID,
                              customer_ids=[LOADTEST_CUSTOMER_ID,
                                            *(row["id"] for row in customers)],
                              created=inserted + int(created))
