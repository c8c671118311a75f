"""Every row lock of the customers app (STYLE.md "Locks in one place per app"): a customer is
locked alone (rank CUSTOMER in ``stateset/locking.py``) to serialise writes to their addresses."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models.functions import Lower

from customers.models import Customer
from stateset.locking import Rank, acquired


def lock_customer(customer_id: uuid.UUID | str) -> bool:
    """Lock the customer row; False when there is none."""
    found = list(Customer.objects.select_for_update().filter(pk=customer_id).values_list("pk",
                                                                                         flat=True))
    acquired(Rank.CUSTOMER, found)
    return bool(found)


def lock_customers_by_emails(emails: Iterable[str], *,
                             fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The customers whose lower-cased email is in ``emails`` (``fields`` of each, as dicts),
    locked in primary-key order (an import batch: compare, then write them and their addresses)."""
    rows = list(
        Customer.objects.alias(email_lower=Lower("email")).filter(email_lower__in=list(emails))
                .select_for_update().order_by("pk").values(*fields))
    acquired(Rank.CUSTOMER, [row["id"] for row in rows])
    return rows
