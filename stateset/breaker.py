"""Circuit breakers for the optional dependencies (SPEC §10): Redis as a cache and the broker.

A hung Redis (it accepts connections and never answers) costs each call its full socket timeout.
A breaker turns "every call waits ``[redis] timeout``" into "one call waits, then the dependency is
skipped for ``cooldown`` seconds": while open, :meth:`CircuitBreaker.allow` is False and callers
take their fallback at once (the cache misses, the rate limiter lets the request through, an
enqueue is left to the outbox pump). After the cooldown one caller is let through as a probe; its
success closes the breaker, its failure opens it again.

The state is observable: ``circuit_breaker_open{dependency}`` (1 while open) and
``circuit_breaker_trips_total{dependency}``, and one log line when it opens and one when it closes.
"""

from __future__ import annotations

import logging
import threading
import time

from stateset import metrics

logger = logging.getLogger("stateset.breaker")
DEFAULT_COOLDOWN = 5.0


class CircuitBreaker:
    def __init__(self, name: str, *, cooldown: float = DEFAULT_COOLDOWN) -> None:
        self.name = name
        self.cooldown = cooldown
        self._open_until = 0.0
        self._tripped = False
        self._probing = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._tripped and time.monotonic() < self._open_until

    def allow(self) -> bool:
        """May the caller use the dependency now? (The hot path: two attribute reads when
        closed.)"""
        if not self._tripped:
            return True
        now = time.monotonic()
        if now < self._open_until:
            return False
        with self._lock:  # half-open: one probe at a time, the others keep skipping
            if self._probing and now < self._open_until + self.cooldown:
                return False
            self._probing = True
            return True

    def failure(self, exc: BaseException | None = None) -> None:
        with self._lock:
            newly = not self._tripped
            self._tripped, self._probing = True, False
            self._open_until = time.monotonic() + self.cooldown
        metrics.BREAKER_OPEN.labels(self.name).set(1)
        if newly:
            metrics.BREAKER_TRIPS.labels(self.name).inc()
            logger.warning("circuit open: skipping %s for %.0f s", self.name, self.cooldown,
                           extra={"fields": {"dependency": self.name, "state": "open",
                                             "error": type(exc).__name__ if exc else ""}})

    def success(self) -> None:
        if not self._tripped:
            return
        with self._lock:
            was, self._tripped, self._probing = self._tripped, False, False
        if was:
            metrics.BREAKER_OPEN.labels(self.name).set(0)
            logger.info("circuit closed: %s answers again", self.name,
                        extra={"fields": {"dependency": self.name, "state": "closed"}})

    def reset(self) -> None:
        """Forget any failure (tests)."""
        with self._lock:
            self._tripped, self._probing, self._open_until = False, False, 0.0
        metrics.BREAKER_OPEN.labels(self.name).set(0)


redis_breaker = CircuitBreaker("redis")
broker_breaker = CircuitBreaker("broker")
