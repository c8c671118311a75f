"""Who is writing (SPEC §5, audit): an API key, a staff user, a task or a command.

The event triggers (``audit.models``) read the actor from two transaction-local settings,
``pghistory.context_id`` and ``pghistory.context_metadata``. pghistory's own ``pghistory.context``
prepends a ``SELECT set_config(...)`` to every write statement in the same ``execute()``; with
server-side binding (the default here, ``stateset.settings``) PostgreSQL refuses several commands
in one prepared statement, so this module sets them itself: one ``set_config`` statement before the
first write of each transaction that touches an audited table, and none for reads or for
transactions that write only unaudited tables.

Nothing here touches the database at import: ``manage.py`` imports it before Django is set up.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from psycopg import pq

# Set by the middleware (a request), a task's prerun signal, or manage.py (a command).
_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("audit_scope", default=None)

# Tables with event triggers; filled by AuditConfig.ready from the event models.
AUDITED_TABLES: tuple[str, ...] = ()

SET_CONTEXT = ("SELECT set_config('pghistory.context_id', %s, true), "
               "set_config('pghistory.context_metadata', %s, true)")
_WRITES = ("insert", "update", "delete", "merge", "with")


class Scope:
    """One request, task or command. ``who`` is resolved at the first audited write, not when the
    scope opens: an API request is authenticated inside the view, after the middleware ran."""

    __slots__ = ("_metadata", "id", "request", "values")

    def __init__(self, request: Any = None, **values: Any) -> None:
        self.id = str(uuid.uuid4())
        self.request = request
        self.values = values
        self._metadata: str | None = None

    def metadata(self) -> str:
        if self._metadata is None:
            who = actor_of_request(self.request) if self.request is not None else {}
            self._metadata = orjson.dumps({**self.values, **who}, default=str).decode()
        return self._metadata


def actor_of_request(request: Any) -> dict[str, Any]:
    """``{"actor": "api-key:<name>", "api_key": ..., "api_key_id": ...}`` for an API key,
    ``{"actor": "admin:<username>", "user": ..., "user_id": ...}`` for a logged-in user, ``{}``
    when nobody is authenticated (yet). Reads what authentication already put on the request."""
    from django.utils.functional import LazyObject, empty

    user = request.__dict__.get("user")
    if user is None:
        return {}
    if isinstance(user, LazyObject):  # the session user of AuthenticationMiddleware
        if user._wrapped is empty:
            user._setup()
        user = user._wrapped
    if hasattr(user, "scopes") and hasattr(user, "name"):  # stateset.keys.KeyPrincipal
        return {"actor": f"api-key:{user.name}", "api_key": user.name, "api_key_id": str(user.id)}
    if getattr(user, "is_authenticated", False):
        name = user.get_username()
        prefix = "admin" if request.path.startswith("/admin/") else "user"
        return {"actor": f"{prefix}:{name}", "user": name, "user_id": user.pk}
    return {}


def current() -> Scope | None:
    return _scope.get()


@contextmanager
def scope(request: Any = None, **values: Any) -> Iterator[Scope]:
    """Attribute the writes inside to ``values`` (``actor="task:..."``) or to ``request``'s user.
    An inner scope replaces the outer one until it exits (a task run eagerly inside a request is
    the task's)."""
    opened = Scope(request, **values)
    token = _scope.set(opened)
    try:
        yield opened
    finally:
        _scope.reset(token)


def open_scope(**values: Any) -> contextvars.Token[Scope | None]:
    """For signal pairs (a task's prerun/postrun): ``close_scope(token)`` ends it."""
    return _scope.set(Scope(None, **values))


def close_scope(token: contextvars.Token[Scope | None]) -> None:
    _scope.reset(token)


def _touches_audited_table(sql: str) -> bool:
    head = sql.lstrip()[:6].lower()
    if not head.startswith(_WRITES):
        return False
    if not any(table in sql for table in AUDITED_TABLES):
        return False
    if head.startswith("with"):  # a CTE: a write only if it holds one
        lowered = sql.lower()
        return "update " in lowered or "insert " in lowered or "delete " in lowered
    return True


def set_context_wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool,
                        context: dict[str, Any]) -> Any:
    """Installed first in every connection's ``execute_wrappers`` (AuditConfig.ready).

    The settings are transaction-local, and a savepoint rolled back undoes them too: what was set
    stays valid while the savepoints open when it was set are all still open (their ids are a
    prefix of today's), else it is set again. Outside any scope, a write after a scoped one in
    the same transaction clears them (a test's single transaction; never a request's)."""
    if not isinstance(sql, str) or not _touches_audited_table(sql):
        return execute(sql, params, many, context)
    opened = _scope.get()
    connection = context["connection"]
    stored = getattr(connection, "audit_context_set", None)
    if connection.connection.info.transaction_status == pq.TransactionStatus.IDLE:
        stored = connection.audit_context_set = None  # this statement starts a new transaction
    if opened is None:
        if stored is not None:
            _set(connection, context, ("", ""))
            connection.audit_context_set = None
        return execute(sql, params, many, context)
    marker = (opened.id, opened.metadata())
    savepoints = tuple(connection.savepoint_ids)
    if stored is not None and stored[0] == marker and savepoints[:len(stored[1])] == stored[1]:
        return execute(sql, params, many, context)
    if connection.get_autocommit():
        # One statement, its own transaction: open one so the settings live as long as it does.
        from django.db import transaction

        with transaction.atomic(using=connection.alias):
            _set(connection, context, marker)
            return execute(sql, params, many, context)
    _set(connection, context, marker)
    connection.audit_context_set = (marker, savepoints)
    return execute(sql, params, many, context)


def _set(connection: Any, context: dict[str, Any], marker: tuple[str, str]) -> None:
    set_context(context["cursor"].cursor, marker)


def set_context(cursor: Any, marker: tuple[str, str]) -> None:
    """The one extra statement of a transaction that writes an audited table (a round trip of
    ~0.1 ms on a local server). On the raw cursor: it is the audit's, not the caller's, so query
    counts of the code under test stay what that code issues."""
    cursor.execute(SET_CONTEXT, marker)


def install(connection: Any, **_kwargs: Any) -> None:
    """``connection_created`` receiver: the wrapper goes first in the list, so that a request's
    own ``execute_wrapper()`` blocks (which pop the last entry on exit) never remove it."""
    if set_context_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, set_context_wrapper)
