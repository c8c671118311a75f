"""Django's PostgreSQL backend, with one change to its connection pool.

Django's pool checks a connection before lending it (``CONN_HEALTH_CHECKS``). When the database has
restarted, every idle connection in the pool is dead, and psycopg_pool tries them one at a time with
a growing back-off between failed checks (1 s, 2 s, 4 s …): with more than a handful of idle
connections the first requests after a restart time out. Here the first failed check drains the pool
instead (all idle connections closed, replacements opened), so a restart costs the next request
about one back-off step, not ``connect_timeout``.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
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


def _check_or_drain(conn: Any) -> None:
    from psycopg_pool import ConnectionPool

    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        # A dead connection means its idle siblings, opened before the same restart, are dead too.
        if conn._pool is not None:
            conn._pool.drain()
        raise
