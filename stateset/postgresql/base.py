"""Django's PostgreSQL backend, with three changes: integers are range-checked, the pool drains, and
timestamps load in C.

With server-side binding Django sends integer columns' values as psycopg's ``Int2``/``Int4``/
``Int8``, whose binary dumpers pack the value into 2, 4 or 8 bytes without a range check:
``priority=2**31 + 5`` was stored as ``-2147483643``, silently. The dumpers registered here refuse
an out-of-range value with a DataError instead (the API answers 422 ``invalid_value`` naming the
field), as PostgreSQL itself does for a value sent as text.

Timestamps: Django's ``timestamptz`` loader subclasses psycopg's pure-Python one (to set the
result's ``tzinfo``), so every timestamp read is parsed in Python: 2.1 µs a value, against 0.4 for
psycopg's C loader, which cannot be subclassed. :func:`_tz_loader` wraps the C loader and sets the
``tzinfo`` as Django's does (same values: both convert to the session's time zone first); a page of
20 orders reads about 50 timestamps.

The pool:

Django's pool checks a connection before lending it (``CONN_HEALTH_CHECKS``). When the database has
restarted, every idle connection in the pool is dead, and psycopg_pool tries them one at a time with
a growing back-off between failed checks (1 s, 2 s, 4 s …): with more than a handful of idle
connections the first requests after a restart time out. Here the first failed check drains the pool
instead (all idle connections closed, replacements opened), so a restart costs the next request
about one back-off step, not ``connect_timeout``.

The check is a round trip (an empty query) on every checkout: about 70 µs of a worker's CPU and
120 µs of wall time per request. A connection this process put back less than
:data:`QUIET_REUSE_SECONDS` ago whose socket has nothing to read is lent without it — as
PgBouncer's ``server_check_delay`` does. A server that went away in between has closed the socket
(a restart, a terminated backend: the FATAL message and the end of stream make it readable), so
that connection is checked, fails and drains the pool as above; only a peer that vanished without
closing (a cut network) is found by the request's own statement instead, as it would be by one
sent a moment after any check.
"""

from __future__ import annotations

import functools
import select
import weakref
from time import monotonic
from typing import Any

import psycopg
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg import _cmodule
from psycopg.adapt import Loader
from psycopg.types import numeric


def _checked(dumper: type, bits: int) -> type:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    class Checked(dumper):  # type: ignore[misc]
        def dump(self, obj: int) -> Any:
            if not low <= obj <= high:
                raise psycopg.DataError(f"integer out of range for a {bits}-bit column: {obj}")
            return super().dump(obj)

    Checked.__name__ = f"Checked{dumper.__name__}"
    return Checked


_CHECKED_DUMPERS = [
    (numeric.Int2, _checked(numeric.Int2Dumper, 16)),
    (numeric.Int4, _checked(numeric.Int4Dumper, 32)),
    (numeric.Int8, _checked(numeric.Int8Dumper, 64)),
    (numeric.Int2, _checked(numeric.Int2BinaryDumper, 16)),
    (numeric.Int4, _checked(numeric.Int4BinaryDumper, 32)),
    (numeric.Int8, _checked(numeric.Int8BinaryDumper, 64)),
]


@functools.cache
def _tz_loader(tz: Any) -> type[Loader] | None:
    """A ``timestamptz`` text loader answering as Django's ``SpecificTzLoader`` for ``tz``
    (psycopg's loader, then ``replace(tzinfo=tz)``), through psycopg's C loader; None without the
    C module. One class per time zone: psycopg remembers every loader class it is given
    (``AdaptersMap._optimised``), so a class made per registration would never be freed."""
    c_module = _cmodule._psycopg
    if c_module is None:
        return None
    c_loader = c_module.TimestamptzLoader

    class CTzLoader(Loader):
        timezone = tz  # compared by Django's create_cursor with the connection's

        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._load = c_loader(oid, context).load

        def load(self, data: Any) -> Any:
            return self._load(data).replace(tzinfo=self.timezone)

    return CTzLoader


# The adapter maps already given our dumpers and loader. Django asks for the connection parameters
# on every checkout from the pool and hands back the same map each time (its template is cached
# per time zone), so the registrations run once per map, not once per request.
_REGISTERED: weakref.WeakSet[Any] = weakref.WeakSet()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        context = params.get("context")
        if context is not None and context not in _REGISTERED:
            for cls, dumper in _CHECKED_DUMPERS:
                context.register_dumper(cls, dumper)
            loader = _tz_loader(self.timezone)
            if loader is not None:
                context.register_loader("timestamptz", loader)
            _REGISTERED.add(context)
        return params

    @property
    def pool(self) -> Any:
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options:
            return None
        # Django's pool registry and connection set-up are private: not in django-stubs.
        if self.alias not in self._connection_pools:  # type: ignore[attr-defined]  # private
            from psycopg_pool import ConnectionPool

            connect_kwargs = self.get_connection_params()
            # Django sets the connection's real mode on checkout
            connect_kwargs["autocommit"] = True
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,  # opened on first use, not at start-up
                configure=self._configure_connection,  # type: ignore[attr-defined]  # private
                check=_check_or_drain if self.settings_dict["CONN_HEALTH_CHECKS"] else None,
                **({} if options is True else options),
            )
            # The first thread to get here wins.
            self._connection_pools.setdefault(self.alias, pool)  # type: ignore[attr-defined]  # private
        return self._connection_pools[self.alias]  # type: ignore[attr-defined]  # private

    def _close(self) -> None:
        if self.connection is not None and self.pool:
            self.connection._stateset_returned_at = monotonic()  # read by _check_or_drain
        super()._close()  # type: ignore[misc]  # private in django-stubs


QUIET_REUSE_SECONDS = 5.0


def _quiet_since_returned(conn: Any) -> bool:
    """Put back by this process less than QUIET_REUSE_SECONDS ago, and nothing arrived since."""
    returned = getattr(conn, "_stateset_returned_at", None)
    if returned is None or monotonic() - returned > QUIET_REUSE_SECONDS:
        return False
    try:
        poller = select.poll()  # not select.select: no limit on the descriptor's number
        poller.register(conn.fileno(), select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError, psycopg.Error):
        return False


def _check_or_drain(conn: Any) -> None:
    from psycopg_pool import ConnectionPool

    if _quiet_since_returned(conn):
        return
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        # A dead connection means its idle siblings, opened before the same restart, are dead too.
        if conn._pool is not None:
            conn._pool.drain()
        raise
