"""Cache-aside per entity with the TTLs of ``[cache.entities]`` (SPEC §7).

- ``get_or_load(key, loader)`` reads through; hits and misses are counted per entity.
- ``invalidate(key)`` drops the key twice — at once and again after commit — leaving a short
tombstone
  each time, so no reader is served the old value once the write began, and a reader that loaded the
  old row before the commit cannot put it back (refills use ``add``, which the tombstone blocks).
- Groups ("all orders of customer X") are versioned namespaces: bumping the version orphans every
key
  of the group at once, without ``KEYS``/``SCAN``.
- Redis down: every call falls back to the loader, logged and counted, never an error.
- Redis hung (accepts, never answers): each call waits at most ``[redis] timeout``, and the first
  one that times out opens ``redis_breaker``: every cache call of every caller (entity cache, rate
  limiter, count estimates) is then skipped for a few seconds (:class:`BreakerClient`).
- Never a replica's value (SPEC §2): a miss that fills the cache reads the primary (one read per
  key per TTL; replicas take the reads nothing caches, and every read while Redis is down).
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import time
from collections import Counter as TallyCounter
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stateset import metrics
from stateset.breaker import redis_breaker
from stateset.db import pin_primary

logger = logging.getLogger("stateset.cache")
T = TypeVar("T")
_MISSING = object()
_TOMBSTONE = "__invalidated__"
TOMBSTONE_SECONDS = 10
STATS_KEY = "cache-stats:{entity}:{kind}"


# --- the Redis client behind the breaker ----------------------------------------------------------


class BreakerOpen(ConnectionInterrupted):  # type: ignore[misc]  # django-redis is untyped
    """Raised instead of calling Redis while its breaker is open (django-redis ignores it, like any
    outage, when ``IGNORE_EXCEPTIONS`` is set: a read misses, a write is dropped)."""

    def __str__(self) -> str:
        return "Redis skipped: circuit open"


_OUTAGES = (RedisConnectionError, RedisTimeoutError, socket.timeout, OSError)


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: DefaultClient, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except BreakerOpen:
            raise
        except ConnectionInterrupted as exc:
            if isinstance(exc.__cause__, _OUTAGES):  # not a ResponseError: Redis did answer
                redis_breaker.failure(exc.__cause__)
            raise
        except _OUTAGES as exc:
            redis_breaker.failure(exc)
            raise ConnectionInterrupted(connection=None) from exc
        redis_breaker.success()
        return result

    return call


class BreakerClient(DefaultClient):  # type: ignore[misc]  # django-redis is untyped
    """django-redis' client with :data:`stateset.breaker.redis_breaker` in front of every
    command."""

    def get_client(self, write: bool = True, tried: Any = None) -> Any:
        if not redis_breaker.allow():
            raise BreakerOpen(connection=None)
        return super().get_client(write, tried)

    def get_client_with_index(self, write: bool = True, tried: Any = None) -> Any:
        if not redis_breaker.allow():
            raise BreakerOpen(connection=None)
        return super().get_client_with_index(write, tried)


for _name in ("get", "set", "add", "incr", "decr", "get_many", "set_many", "delete", "delete_many",
              "delete_pattern", "has_key", "touch", "ttl", "expire", "persist", "clear", "keys",
              "incr_version"):
    setattr(BreakerClient, _name, _guarded(getattr(DefaultClient, _name)))


# --- counters -------------------------------------------------------------------------------------


def increment(key: str, delta: int = 1, *, initial: int, timeout: int | None) -> int | None:
    """``key`` moved by ``delta``, or set to ``initial`` (expiring after ``timeout`` seconds) when
    it does not exist yet; the new value. One round trip once the key exists — the common case of a
    rate-limit window or a group's version — where add-then-increment costs two. None when the
    cache swallowed an outage (``IGNORE_EXCEPTIONS``); other cache errors propagate."""
    try:
        value = cache.incr(key, delta)
    except ValueError:  # not there yet (or just expired): start it, unless a racer just did
        if cache.add(key, initial, timeout=timeout):
            return initial
        value = cache.incr(key, delta)
    return value if isinstance(value, int) else None


def queue_increment(pipe: Any, key: str, *, initial: int, timeout: int | None) -> None:
    """:func:`increment` by one as two commands on a raw Redis ``pipe`` (the caller's round trip):
    the same counter under the same key, created at ``initial`` expiring after ``timeout``
    seconds, else moved by one; the pipeline's last answer is the new value."""
    pipe.set(cache.make_key(key), initial - 1, ex=timeout, nx=True)
    pipe.incr(cache.make_key(key))


# --- hit/miss tallies -----------------------------------------------------------------------------


class _Tally:
    """Hit/miss counts shared across processes (for ``cache_stats``), flushed every few seconds so
    counting costs no extra round-trip per read."""

    def __init__(self) -> None:
        self._counts: TallyCounter[tuple[str, str]] = TallyCounter()
        self._lock = threading.Lock()
        self._flushed = time.monotonic()

    def add(self, entity: str, kind: str) -> None:
        with self._lock:
            self._counts[(entity, kind)] += 1
            due = time.monotonic() - self._flushed > 5
        if due:
            self.flush()

    def reset(self) -> None:
        """Forget what is not flushed yet (tests start from zero)."""
        with self._lock:
            self._counts.clear()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, TallyCounter()
            self._flushed = time.monotonic()
        for (entity, kind), n in counts.items():
            key = STATS_KEY.format(entity=entity, kind=kind)
            try:
                increment(key, n, initial=n, timeout=None)
            except Exception:
                return


tally = _Tally()


class EntityCache:
    def __init__(self, entity: str):
        self.entity = entity

    @property
    def ttl(self) -> int:
        return int(settings.CACHE_TTLS.get(self.entity, 0))

    @property
    def enabled(self) -> bool:
        return settings.CACHE_ENABLED and self.ttl > 0

    def key(self, *parts: Any) -> str:
        return ":".join([self.entity, *(str(p) for p in parts)])

    def get_or_load(self, key: str, loader: Callable[[], T], *, depends_on: str | None = None) -> T:
        """The cached value of ``key``, else ``loader()`` (stored unless None). With ``depends_on``
        (a group's namespace key, :meth:`group_version_key`), the value is stored with the group's
        version and counts as a miss once the group moved on — both read in one round trip."""
        if not self.enabled:
            return loader()
        version = None
        try:
            if depends_on is None:
                value = cache.get(key, _MISSING)
            else:
                got = cache.get_many([key, depends_on])
                value, version = got.get(key, _MISSING), got.get(depends_on) or 1
                if isinstance(value, tuple) and len(value) == 2 and value[0] == version:
                    value = value[1]
                elif value != _TOMBSTONE:
                    value = _MISSING
        except Exception:
            metrics.CACHE_ERRORS.labels("get").inc()
            logger.warning("cache read failed; serving from the database", exc_info=True)
            return loader()
        if value is not _MISSING and value != _TOMBSTONE:
            metrics.CACHE_HITS.labels(self.entity).inc()
            tally.add(self.entity, "hits")
            return cast(T, value)  # what a loader of this key stored
        metrics.CACHE_MISSES.labels(self.entity).inc()
        tally.add(self.entity, "misses")
        # A value that is going to be stored is read on the primary: a replica may be behind it,
        # and what it answered would then be served for the whole TTL.
        with pin_primary():
            value = loader()
        if value is not None and value is not _MISSING and value != _TOMBSTONE:
            try:
                stored = value if depends_on is None else (version, value)
                if not cache.add(key, stored, timeout=self.ttl) and depends_on is not None:
                    # An entry of an older version may be replaced; a tombstone may not.
                    current = cache.get(key)
                    if isinstance(current, tuple) and current[0] != version:
                        cache.set(key, stored, timeout=self.ttl)
            except Exception:
                metrics.CACHE_ERRORS.labels("set").inc()
        return value

    def invalidate(self, *keys: str) -> None:
        """Drop ``keys`` now and again once the current transaction commits. Until the commit,
        readers go to the database, which still answers the last committed value."""

        def drop() -> None:
            try:
                if len(keys) == 1:  # a plain SET: 103 µs, where set_many's pipeline costs 164
                    cache.set(keys[0], _TOMBSTONE, timeout=TOMBSTONE_SECONDS)
                else:
                    cache.set_many({k: _TOMBSTONE for k in keys}, timeout=TOMBSTONE_SECONDS)
            except Exception:
                metrics.CACHE_ERRORS.labels("delete").inc()
                logger.warning("cache invalidation failed", exc_info=True)

        drop()
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(drop)

    # --- groups ----------------------------------------------------------------------------------

    def _group_key(self, group: str) -> str:
        return f"ns:{self.entity}:{group}"

    def group_version_key(self, group: str) -> str:
        """The key holding ``group``'s version, for another entity's
        ``get_or_load(depends_on=)``."""
        return self._group_key(group)

    def group_key(self, group: str, *parts: Any) -> str:
        """A key inside ``group``'s current namespace version."""
        version = 1
        if self.enabled:
            try:
                version = cache.get(self._group_key(group)) or 1
            except Exception:
                metrics.CACHE_ERRORS.labels("get").inc()
        return self.key(group, f"v{version}", *parts)

    def invalidate_group(self, group: str) -> None:
        """Move ``group`` to a new namespace now and again after commit (see ``invalidate``)."""

        def bump() -> None:
            key = self._group_key(group)
            try:
                increment(key, initial=2, timeout=None)  # a missing version is 1
            except Exception:
                metrics.CACHE_ERRORS.labels("delete").inc()
                logger.warning("cache group invalidation failed", exc_info=True)

        bump()
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(bump)


def cache_stats() -> dict[str, dict[str, float]]:
    """Hits, misses and hit rate per entity, across processes (``cache_stats`` command)."""
    tally.flush()
    stats: dict[str, dict[str, float]] = {}
    for entity in settings.CACHE_TTLS:
        hits = cache.get(STATS_KEY.format(entity=entity, kind="hits")) or 0
        misses = cache.get(STATS_KEY.format(entity=entity, kind="misses")) or 0
        total = hits + misses
        stats[entity] = {"hits": hits, "misses": misses,
                         "hit_rate": (hits / total) if total else 0.0}
    return stats
