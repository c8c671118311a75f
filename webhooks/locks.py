"""Every row lock of the webhooks app (STYLE.md "Locks in one place per app"). Outbox events are
claimed alone, ``SKIP LOCKED`` (rank OUTBOX in ``stateset/locking.py``), so dispatchers never wait
on each other."""

from __future__ import annotations

import uuid

from stateset.locking import Rank, acquired
from webhooks.models import Endpoint, Event


def claim_undispatched_events(*, limit: int) -> list[Event]:
    """Up to ``limit`` undispatched events, oldest first, that no other dispatcher holds."""
    rows = list(Event.objects.select_for_update(skip_locked=True).filter(dispatched_at__isnull=True)
                .order_by("created_at").only("id", "type")[:limit])
    acquired(Rank.OUTBOX, sorted(e.id for e in rows))
    return rows


def lock_endpoint(endpoint_id: uuid.UUID) -> Endpoint | None:
    """One endpoint, locked (an update that reads what it changes: re-enabling, rotating)."""
    endpoint = Endpoint.objects.select_for_update().filter(id=endpoint_id).first()
    if endpoint is not None:
        acquired(Rank.ENDPOINT, [endpoint.id])
    return endpoint
