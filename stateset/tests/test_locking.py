"""The lock-order recorder (stateset/locking.py) itself: it sees a lock taken out of order."""

import uuid

import pytest
from django.db import transaction

from stateset.locking import LockOrderViolation, Rank, acquired, recording

A, B = sorted([uuid.uuid4(), uuid.uuid4()])


@pytest.mark.django_db
def test_locks_in_rank_then_key_order_pass_and_are_recorded():
    with recording() as recorder, transaction.atomic(durable=True):
        acquired(Rank.ORDER, [A])
        acquired(Rank.SHIPMENT_RETURN, [A, B])
        acquired(Rank.ORDER_ITEM, [B])
        acquired(Rank.INVENTORY_ITEM, [A, B])
        acquired(Rank.INVENTORY_ITEM, [A])  # already held: fine
    assert recorder.ranks == [[Rank.ORDER, Rank.SHIPMENT_RETURN, Rank.ORDER_ITEM,
                               Rank.INVENTORY_ITEM]]


@pytest.mark.django_db
@pytest.mark.parametrize("first, second", [
    ((Rank.INVENTORY_ITEM, A), (Rank.RESERVATION, B)),  # a lower rank after a higher one
    ((Rank.ORDER_ITEM, B), (Rank.ORDER_ITEM, A)),  # one rank, keys descending
])
def test_a_lock_out_of_order_is_a_violation(first, second):
    with recording(), pytest.raises(LockOrderViolation), transaction.atomic(durable=True):
        acquired(first[0], [first[1]])
        acquired(second[0], [second[1]])


@pytest.mark.django_db
def test_each_transaction_has_its_own_order():
    with recording() as recorder:
        with transaction.atomic(durable=True):
            acquired(Rank.INVENTORY_ITEM, [B])
        with transaction.atomic(durable=True):
            acquired(Rank.ORDER, [A])
    assert recorder.ranks == [[Rank.INVENTORY_ITEM], [Rank.ORDER]]
