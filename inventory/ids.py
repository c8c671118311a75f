"""Time-ordered UUIDs (RFC 9562 version 7) for the ledger.

Python 3.13 has no ``uuid.uuid7``. Ledger ids that grow with time keep inserts at the right edge of
the primary-key index, and make ``ORDER BY created_at, id`` follow the order in which one process
wrote movements, even when several share a timestamp. Within a process ids are strictly increasing
(a counter fills the sub-millisecond bits).
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = [0, 0]  # [unix_ms, counter]
_COUNTER_BITS = 12  # rand_a


def uuid7() -> uuid.UUID:
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        last_ms, counter = _last
        if now_ms <= last_ms:
            now_ms = last_ms
            counter += 1
            if counter >= 1 << _COUNTER_BITS:  # 4096 ids in one millisecond: borrow the next one
                now_ms, counter = last_ms + 1, 0
        else:
            counter = 0
        _last[0], _last[1] = now_ms, counter
    rand_b = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    value = (now_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand_b
    return uuid.UUID(int=value)
