"""Every row lock of the platform's own tables (STYLE.md "Locks in one place per app"): an API key
is locked alone (rank API_KEY in ``stateset/locking.py``) to serialise its rotation and
revocation."""

from __future__ import annotations

import uuid

from stateset.locking import Rank, acquired
from stateset.models import ApiKey


def lock_api_key(api_key_id: uuid.UUID | str) -> ApiKey | None:
    """Lock and return the key, or None when there is none."""
    api_key = ApiKey.objects.select_for_update().filter(pk=api_key_id).first()
    acquired(Rank.API_KEY, [api_key.pk] if api_key is not None else [])
    return api_key
