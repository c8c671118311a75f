"""Every row lock of the customers app (STYLE.md "Locks in one place per app"): a customer is
locked alone (rank CUSTOMER in ``stateset/locking.py``) to serialise writes to their addresses."""

from __future__ import annotations

import uuid

from customers.models import Customer
from stateset.locking import Rank, acquired


def lock_customer(customer_id: uuid.UUID | str) -> bool:
    """Lock the customer row; False when there is none."""
    found = list(Customer.objects.select_for_update().filter(pk=customer_id).values_list("pk",
                                                                                         flat=True))
    acquired(Rank.CUSTOMER, found)
    return bool(found)
