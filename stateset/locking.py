"""The one global order of row locks (STYLE.md "Locks in one order").

Every ``select_for_update`` of the project lives in an app's ``locks.py``, and every lock helper
there reports what it locked with :func:`acquired`. A transaction takes row locks in increasing
:class:`Rank`, and rows of one rank in increasing primary key, so two transactions can never wait on
each other in a cycle (no deadlock), whatever the entry point:

====================  ========================================================================
rank                  rows
====================  ========================================================================
``ORDER``             ``orders_order`` — the first lock of every write to an order or its children
``SHIPMENT_RETURN``   ``fulfillment_shipment`` / ``returns_return`` (siblings: one kind per call)
``ORDER_ITEM``        ``orders_orderitem`` (counters guarded by conditional UPDATEs)
``PAYMENT``           nothing is locked; payments are appended under the order lock
``RESERVATION``       ``inventory_reservation``
``PRODUCT_STOCK``     a transaction-level advisory lock per product, keyed by its id: the *set* of
                      the product's inventory rows. A new row is inserted under it (exclusive), and
                      an order holds it (shared) across the scan that locks the product's rows, so
                      no order misses a row that appears meanwhile (a row lock cannot cover a row
                      that does not exist yet)
``INVENTORY_ITEM``    ``inventory_inventoryitem`` (also the implicit lock of a counter UPDATE)
``BACKORDER``         ``inventory_backorder``: a product's queue of waiting demand, keyed by the
                      product (its rows are locked in queue order; every writer of a product's
                      queue holds that product's inventory rows first, which serialises them)
``LOCATION``          ``inventory_location`` (changed alone)
``PRODUCT``           ``catalog_product`` (changed alone)
``CUSTOMER``          ``customers_customer`` / ``customers_address`` (changed alone)
``ENDPOINT``          ``webhooks_endpoint`` (changed alone)
``API_KEY``           ``stateset_apikey`` (changed alone)
``OUTBOX``            ``webhooks_event`` (claimed alone, ``SKIP LOCKED``)
====================  ========================================================================

Re-locking a row the transaction already holds is harmless and allowed. In production
:func:`acquired` costs one context-variable read; under :func:`recording` (the test suite turns it
on for every test) it checks each acquisition against what the same transaction took before and
raises :class:`LockOrderViolation` on a lock taken out of order.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connections


class Rank(enum.IntEnum):
    ORDER = 10
    SHIPMENT_RETURN = 20
    ORDER_ITEM = 30
    PAYMENT = 35
    RESERVATION = 40
    PRODUCT_STOCK = 45
    INVENTORY_ITEM = 50
    BACKORDER = 55
    LOCATION = 60
    PRODUCT = 70
    CUSTOMER = 80
    ENDPOINT = 90
    API_KEY = 100
    OUTBOX = 110


class LockOrderViolation(AssertionError):
    """A transaction locked a row after a row that comes later in the global order."""


@dataclass
class _Trail:
    """The locks one transaction took, in order."""

    held: set[tuple[int, str]] = field(default_factory=set)
    highest: tuple[int, str] | None = None
    taken: list[tuple[Rank, str]] = field(default_factory=list)


@dataclass
class Recorder:
    """What :func:`recording` collects: every acquisition, per transaction, in order."""

    strict: bool = True
    transactions: list[list[tuple[Rank, str]]] = field(default_factory=list)
    _trails: weakref.WeakKeyDictionary[Any,
                                       _Trail] = field(default_factory=weakref.WeakKeyDictionary)

    def trail(self, scope: Any) -> _Trail:
        trail = self._trails.get(scope)
        if trail is None:
            trail = self._trails[scope] = _Trail()
            self.transactions.append(trail.taken)
        return trail

    @property
    def ranks(self) -> list[list[Rank]]:
        """Per transaction, the ranks locked, consecutive repeats collapsed."""
        out = []
        for taken in self.transactions:
            ranks: list[Rank] = []
            for rank, _ in taken:
                if not ranks or ranks[-1] != rank:
                    ranks.append(rank)
            out.append(ranks)
        return out


_recorder: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("lock_recorder",
                                                                            default=None)


@contextlib.contextmanager
def recording(*, strict: bool = True) -> Iterator[Recorder]:
    """Record (and with ``strict``, check) every lock taken in this context."""
    recorder = Recorder(strict=strict)
    token = _recorder.set(recorder)
    try:
        yield recorder
    finally:
        _recorder.reset(token)


def _scope(using: str) -> Any:
    """The transaction the locks belong to: the outermost block the code itself opened. (A test
    case's own wrapping blocks, ``_from_testcase``, stand for no transaction of the application:
    each service a test calls is checked on its own.)"""
    blocks = connections[using].atomic_blocks
    if not blocks:
        return None
    for block in blocks:
        if not getattr(block, "_from_testcase", False):
            return block
    return blocks[-1]


def acquired(rank: Rank, keys: Iterable[Any], *, using: str = "default") -> None:
    """Report that the current transaction now holds row locks on ``keys`` (primary keys, in the
    order they were locked) of rank ``rank``. A no-op unless a :func:`recording` is active."""
    recorder = _recorder.get()
    if recorder is None:
        return
    scope = _scope(using)
    if scope is None:
        return
    trail = recorder.trail(scope)
    for key in keys:
        entry = (int(rank), f"{key:020d}" if isinstance(key, int) else str(key))
        if entry in trail.held:
            continue
        if recorder.strict and trail.highest is not None and entry < trail.highest:
            raise LockOrderViolation(
                f"{rank.name} {key} locked after {Rank(trail.highest[0]).name} {trail.highest[1]}: "
                "locks go in rank order, and by primary key within a rank (stateset/locking.py)."
            )
        trail.held.add(entry)
        trail.taken.append((rank, entry[1]))
        if trail.highest is None or entry > trail.highest:
            trail.highest = entry
