"""Read replicas (SPEC §2, the guide's "Database Read Replicas").

Reads go to a replica chosen by ``[database] read_preference``. Everything else goes to the primary:
writes, reads inside a transaction, and every read of a request or Celery task after its first write
(read-your-writes: :func:`request_scope`, entered by the request middleware and by every task).
A replica that is down or replays more than ``[database] max_replica_lag`` seconds behind is
skipped (:class:`ReplicaHealth`, one check per replica per process every second, not a query per
read); with no usable replica, reads fall back to the primary. A value the entity cache stores is
read with :func:`pin_primary`, so the cache never holds what a lagging replica answered.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connections, router
from django.db.models import F, Model, QuerySet
from django.db.models.fields import NOT_PROVIDED, AutoFieldMixin, Field
from django.utils import timezone

from stateset.errors import PreconditionFailed

logger = logging.getLogger("stateset.db")
REPLICA_PREFIX = "replica_"
_pinned: contextvars.ContextVar[bool] = contextvars.ContextVar("pinned_to_primary", default=False)
_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("db_scope", default=None)
# Credentials and sessions are always read on the primary: a key or a login made a moment ago must
# work on the client's next request, whatever a replica has replayed.
PRIMARY_READ_MODELS = frozenset({"stateset.apikey", "sessions.session", "auth.user"})
# Statements that leave the database as it was. Anything else on the primary (INSERT, UPDATE,
# DELETE, a CTE, SAVEPOINT, SET CONSTRAINTS ...) counts as a write of the current scope.
_READS = ("SELECT", "SHOW", "EXPLAIN", "VALUES")


@contextlib.contextmanager
def pin_primary(pinned: bool = True) -> Iterator[None]:
    """Send every read in this block to the primary (with ``pinned=False``: change nothing)."""
    token = _pinned.set(pinned or _pinned.get())
    try:
        yield
    finally:
        _pinned.reset(token)


class _Scope:
    """One request or task. ``primary`` turns true at its first write and stays true."""

    __slots__ = ("primary",)

    def __init__(self, primary: bool) -> None:
        self.primary = primary

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        # An execute wrapper on the primary connection: raw SQL writes (``connection.cursor()``)
        # bypass the router, so the statements themselves say whether the scope has written.
        if not self.primary and not sql.lstrip()[:7].upper().startswith(_READS):
            self.primary = True
        return execute(sql, params, many, context)


@contextlib.contextmanager
def request_scope(*, primary: bool = False) -> Iterator[None]:
    """Read-your-writes for one request or Celery task: once it has written (or from the start,
    with ``primary=True``) every later read of it goes to the primary. A scope entered inside
    another (an eager task run by a request) is the same scope."""
    outer = _scope.get()
    if outer is not None:
        outer.primary = outer.primary or primary
        yield
        return
    scope = _Scope(primary)
    token = _scope.set(scope)
    try:
        if replica_aliases():
            with connections["default"].execute_wrapper(scope):
                yield
        else:  # nothing to route: not even a wrapper per query
            yield
    finally:
        _scope.reset(token)


def replica_aliases() -> tuple[str, ...]:
    databases = settings.DATABASES
    if len(databases) == 1:
        return ()
    return tuple(alias for alias in databases if alias.startswith(REPLICA_PREFIX))


# --- replica health ------------------------------------------------------------------------------

# The standby's replay delay: zero when it has replayed everything it received and still streams
# (an idle primary sends nothing to replay, however old the last replayed commit); otherwise the
# age of the last replayed commit. NULL (no commit replayed since start-up while behind) is unknown,
# treated as lagging. A server that is not in recovery is a primary: no lag.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
         AND EXISTS (SELECT FROM pg_stat_wal_receiver) THEN 0
    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
END
"""


@dataclass(frozen=True)
class ReplicaState:
    usable: bool
    lag: float | None  # seconds; None when the replica could not be asked
    reason: str
    checked_at: float  # time.monotonic()


class ReplicaHealth:
    """A short-lived memo of each replica's liveness and lag, per process.

    A check runs on its own small connection (``probe_timeout`` to connect, the same for the
    query), not through the pool: a replica that went away costs one check at most every
    ``ttl`` seconds, not a pool timeout per request. While one thread re-checks, the others go on
    with the previous answer."""

    ttl = 1.0
    probe_timeout = 2

    def __init__(self) -> None:
        self._states: dict[str, ReplicaState] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._probes: dict[str, Any] = {}
        self._guard = threading.Lock()

    def usable(self, alias: str) -> bool:
        state = self._states.get(alias)
        if state is None or time.monotonic() - state.checked_at >= self.ttl:
            lock = self._lock(alias)
            if lock.acquire(blocking=state is None):
                try:
                    state = self._states.get(alias)
                    if state is None or time.monotonic() - state.checked_at >= self.ttl:
                        state = self.check(alias)
                finally:
                    lock.release()
            else:
                state = self._states.get(alias) or state
        return state is not None and state.usable

    def state(self, alias: str) -> ReplicaState | None:
        return self._states.get(alias)

    def forget(self) -> None:
        """Drop every memo and probe connection (tests; a changed set of replicas)."""
        with self._guard:
            for probe in self._probes.values():
                with contextlib.suppress(Exception):
                    probe.close()
            self._probes.clear()
            self._states.clear()

    def check(self, alias: str) -> ReplicaState:
        max_lag = float(settings.MAX_REPLICA_LAG)
        try:
            lag = self._lag(alias)
        except Exception as exc:
            self._drop_probe(alias)
            state = ReplicaState(False, None, f"down: {type(exc).__name__}", time.monotonic())
        else:
            if lag is None or lag > max_lag:
                shown = "unknown" if lag is None else f"{lag:.1f} s"
                state = ReplicaState(False, lag, f"lagging: {shown} > {max_lag:g} s",
                                     time.monotonic())
            else:
                state = ReplicaState(True, lag, "ok", time.monotonic())
        previous = self._states.get(alias)
        if previous is None or previous.usable != state.usable:
            log = logger.info if state.usable else logger.warning
            log("replica %s %s", alias, "usable" if state.usable else f"skipped ({state.reason})",
                extra={"fields": {"replica": alias, "reason": state.reason,
                                  "lag_seconds": state.lag}})
        self._states[alias] = state
        return state

    def _lock(self, alias: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(alias, threading.Lock())

    def _lag(self, alias: str) -> float | None:
        probe = self._probes.get(alias)
        if probe is None or probe.closed:
            probe = self._probes[alias] = self._connect(alias)
        row = probe.execute(LAG_SQL).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def _connect(self, alias: str) -> Any:
        import psycopg

        s = settings.DATABASES[alias]
        options = s.get("OPTIONS", {})
        params = {"dbname": s["NAME"], "user": s["USER"], "password": s["PASSWORD"] or None,
                  "host": s["HOST"] or None, "port": s["PORT"] or None,
                  **{k: options[k] for k in ("sslmode", "sslrootcert") if k in options}}
        return psycopg.connect(
            **{k: v for k, v in params.items() if v is not None},
            connect_timeout=self.probe_timeout, autocommit=True, prepare_threshold=None,
            application_name="stateset-replica-check",
            options=f"-c statement_timeout={self.probe_timeout * 1000}",
        )

    def _drop_probe(self, alias: str) -> None:
        probe = self._probes.pop(alias, None)
        if probe is not None:
            with contextlib.suppress(Exception):
                probe.close()


replica_health = ReplicaHealth()


class ReplicaRouter:
    def __init__(self) -> None:
        self._turn = itertools.count()

    def db_for_read(self, model: Any, **hints: Any) -> str:
        replicas = replica_aliases()
        if not replicas or settings.READ_PREFERENCE == "primary" or _pinned.get():
            return "default"
        if model._meta.label_lower in PRIMARY_READ_MODELS:
            return "default"
        scope = _scope.get()
        if (scope is not None and scope.primary) or connections["default"].in_atomic_block:
            return "default"
        if settings.READ_PREFERENCE == "random":
            replicas = tuple(random.sample(replicas, len(replicas)))
        else:
            start = next(self._turn) % len(replicas)
            replicas = replicas[start:] + replicas[:start]
        for alias in replicas:
            if replica_health.usable(alias):
                return alias
        return "default"

    def db_for_write(self, model: Any, **hints: Any) -> str:
        scope = _scope.get()
        if scope is not None:
            scope.primary = True
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"


class Prebuilt[Q: QuerySet[Any, Any]]:
    """A read's queryset with its ``values()`` and annotations resolved once per process, handed
    out as a fresh clone per call (``.all()``) for the caller to filter, order and slice. Resolving
    them is much of an ORM read's Python cost: building the page query of ``GET /orders`` took
    456 µs a request, cloning the prebuilt one 33 µs. The prebuilt queryset itself is never
    evaluated, so it holds no rows; a clone shares only resolved expressions, which compiling
    does not change."""

    def __init__(self, build: Callable[[], Q]):
        self._build = build
        self._queryset: Q | None = None

    def __call__(self) -> Q:
        if self._queryset is None:  # first use, after the app registry is ready
            self._queryset = self._build()
        return self._queryset.all()


def update_versioned(model: type[Any], *, pk: Any, values: dict[str, Any],
                     expected_version: int | None = None,
                     not_found: Exception, where: dict[str, Any] | None = None) -> None:
    """The one way a row's ``version`` moves: ``UPDATE ... SET <values>, version = version + 1,
    updated_at = now() WHERE pk = %s [AND version = %s] RETURNING version``. With
    ``expected_version`` (If-Match) the check and the write are the same statement, so a write that
    slipped in between the client's read and this one still answers 412. ``where`` adds conditions
    (the partition key, so the UPDATE touches one partition). Raises ``not_found`` or
    PreconditionFailed."""
    rows = model.objects.filter(pk=pk, **(where or {}))
    if expected_version is not None:
        rows = rows.filter(version=expected_version)
    if rows.update(**values, version=F("version") + 1, updated_at=timezone.now()):
        return
    current = model.objects.filter(pk=pk).values_list("version", flat=True).first()
    if current is None:
        raise not_found
    raise PreconditionFailed(details={"current_version": current,
                                      "expected_version": expected_version})


def save_versioned(obj: Any, values: dict[str, Any], *,
                   where: dict[str, Any] | None = None) -> None:
    """:func:`update_versioned` for a row the caller holds locked (its ``version`` is current, so
    there is nothing to compare): one UPDATE, and the instance follows."""
    now = timezone.now()
    type(obj).objects.filter(pk=obj.pk, **(where or {})).update(**values, version=F("version") + 1,
                                                                updated_at=now)
    for name, value in values.items():
        setattr(obj, name, value)
    obj.version += 1
    obj.updated_at = now


def _is_auto(field: Field[Any, Any]) -> bool:
    # Not an isinstance() in place: mypy would narrow the field to the mixin, which has no attname.
    return isinstance(field, AutoFieldMixin)


class _Batch:
    """Inserts held by :func:`batched_inserts` for one connection."""

    __slots__ = ("flushing", "statements")

    def __init__(self) -> None:
        self.statements: list[tuple[str, list[Any]]] = []
        self.flushing = False

    def flush(self, connection: Any) -> None:
        if not self.statements:
            return
        statements, self.statements = self.statements, []
        *ahead, (last_sql, _) = statements
        sql = last_sql
        if ahead:
            ctes = ", ".join(f"w{index} AS ({part})" for index, (part, _) in enumerate(ahead))
            sql = f"WITH {ctes} {last_sql}"
        params = [value for _, part_params in statements for value in part_params]
        self.flushing = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
        finally:
            self.flushing = False

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        # Any other statement on the connection sees the held rows: they are sent first.
        if self.statements and not self.flushing:
            self.flush(context["connection"])
        return execute(sql, params, many, context)


@contextlib.contextmanager
def batched_inserts(using: str = "default") -> Iterator[None]:
    """Hold the :func:`insert_rows` calls that read nothing back and send them as one statement
    (``WITH w0 AS (INSERT ...), w1 AS (INSERT ...) INSERT ...``: PostgreSQL checks foreign keys at
    the statement's end, so a child may come with its parent), just before the next statement on
    the connection or at the block's end, whichever is first. Round trips are what a hot row's lock
    is held for and what a write path waits on: a reservation's movement, reservation and outbox
    rows are one round trip, not three. Nothing else changes: every other statement still sees
    every row inserted before it, and an error raised by a held insert rolls back the caller's
    transaction as it would have. Must run inside a transaction (the rows are sent before the
    block ends, never after its commit)."""
    connection = connections[using]
    assert connection.in_atomic_block, "batched inserts run inside a transaction"
    if getattr(connection, "_stateset_batch", None) is not None:  # nested: the outer block sends
        yield
        return
    batch = _Batch()
    connection._stateset_batch = batch  # type: ignore[attr-defined]  # read by insert_rows
    try:
        with connection.execute_wrapper(batch):
            yield
            batch.flush(connection)
    finally:
        connection._stateset_batch = None  # type: ignore[attr-defined]


def insert_rows(objs: list[Any], *, returning: tuple[str, ...] = ()) -> None:
    """``INSERT`` model instances in one statement, without the ORM's per-call query compilation
    (about a millisecond of CPU per ``bulk_create`` on the order hot path, measured by
    ``loadtest/profile.py``). Values go through each field's ``get_db_prep_save`` exactly as the ORM
    would; fields with a database default and no Python default (``db_default``) and generated
    fields are left to PostgreSQL, and ``returning`` names fields read back onto the instances.
    No signals are sent (nothing here listens to them). Inside :func:`batched_inserts`, an insert
    that reads nothing back is held and sent with the others."""
    if not objs:
        return
    model = type(objs[0])
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    database_side = [f for f in meta.concrete_fields
                     if f.generated or (f.has_db_default() and f.default is NOT_PROVIDED)
                     or (_is_auto(f) and getattr(objs[0], f.attname) is None)]
    fields = [f for f in meta.concrete_fields if f not in database_side]
    returning = tuple(dict.fromkeys([*(f.name for f in database_side if _is_auto(f)), *returning]))
    for obj in objs:
        for field in fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                field.pre_save(obj, add=True)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) VALUES "
        f"{', '.join([row] * len(objs))}")
    returned = [meta.get_field(name) for name in returning]
    if returned:
        sql += " RETURNING " + ", ".join(connection.ops.quote_name(f.column) for f in returned)
    params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for obj in objs
              for f in fields]
    batch: _Batch | None = getattr(connection, "_stateset_batch", None)
    if batch is not None and not returned:
        batch.statements.append((sql, params))
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if returned:
                for obj, values in zip(objs, cursor.fetchall(), strict=True):
                    for field, value in zip(returned, values, strict=True):
                        setattr(obj, field.attname, value)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


@dataclass(frozen=True)
class _Compiled:
    model: type[Any]
    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]  # where each argument's value goes in ``params``
    init_list: tuple[str, ...]
    start: int
    end: int
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]


class CompiledRead[M: Model]:
    """A model read by ids whose SQL is compiled once per process and per shape, then sent with
    each call's ids: ``CompiledRead(lambda pk: Customer.objects.filter(pk=pk).defer(...)[:1])``.
    Compiling a queryset is most of a small ORM read's Python cost (filter, ``as_sql``, the select
    and its converters: about 0.5 ms a read on the order hot path, ``loadtest/profile.py``); the
    rows come back through the same cursor wrappers, converters and ``Model.from_db`` as the
    ORM's, from the database the router picks for a read.

    ``build`` takes the ids (a UUID, or a tuple of UUIDs for ``__in``: one compilation per tuple
    length) and returns a queryset of model instances; it runs once per shape with stand-in values,
    each of which must appear exactly once among the compiled parameters (else the shape is
    refused: :class:`TypeError`, a programming error), and so is one with ``select_related`` or
    annotations. Unlike :class:`Prebuilt`, which saves resolving a queryset but still compiles
    each caller's clone, nothing is built per call but the parameter list. With ``key=uuid.UUID``
    (the default) arguments are anything ``uuid.UUID()`` reads (a malformed one raises
    ``ValueError``); with ``key=str`` they are strings, sent as given (``build`` must not
    transform its arguments: a lookup that does, such as ``__iexact``, fails the stand-in check),
    and anything else raises ``TypeError``."""

    def __init__(self, build: Callable[..., QuerySet[M]], *,
                 key: type[uuid.UUID] | type[str] = uuid.UUID) -> None:
        self._build = build
        self._key = key
        self._compiled: dict[tuple[int, ...], _Compiled] = {}
        self._lock = threading.Lock()

    def __call__(self, *args: uuid.UUID | str | tuple[uuid.UUID | str, ...]) -> list[M]:
        shape = tuple(len(arg) if isinstance(arg, tuple) else -1 for arg in args)
        compiled = self._compiled.get(shape)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(shape) or self._compile(shape)
                self._compiled[shape] = compiled
        as_key = _as_uuid if self._key is uuid.UUID else _as_text
        values = [as_key(value) for arg in args
                  for value in (arg if isinstance(arg, tuple) else (arg,))]
        params = list(compiled.params)
        for slot, value in zip(compiled.slots, values, strict=True):
            params[slot] = value
        model = compiled.model
        alias = router.db_for_read(model)
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        found: list[M] = []
        for row in rows:
            if compiled.converters:
                row = list(row)
                for index, functions, expression in compiled.converters:
                    for function in functions:
                        row[index] = function(row[index], expression, connection)
            found.append(model.from_db(alias, compiled.init_list,
                                       row[compiled.start:compiled.end]))
        return found

    def _compile(self, shape: tuple[int, ...]) -> _Compiled:
        stand_in: Callable[[], Any] = (uuid.uuid4 if self._key is uuid.UUID
                                       else lambda: f"stand-in {uuid.uuid4().hex}")
        stand_ins = [tuple(stand_in() for _ in range(n)) if n >= 0 else stand_in()
                     for n in shape]
        queryset = self._build(*stand_ins)
        compiler = queryset.query.get_compiler(using="default")
        sql, params = compiler.as_sql()
        flat = [value for arg in stand_ins
                for value in (arg if isinstance(arg, tuple) else (arg,))]
        slots = []
        for value in flat:
            where = [index for index, param in enumerate(params) if param == value]
            if len(where) != 1:
                raise TypeError(f"{queryset.model.__name__}: an id must be one parameter of the "
                                f"compiled read, found {len(where)}")
            slots.append(where[0])
        klass_info = compiler.klass_info
        if (klass_info is None or klass_info.get("related_klass_infos")
                or compiler.annotation_col_map):
            raise TypeError("a compiled read selects one model's columns only")
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        select = compiler.select
        converters = compiler.get_converters([column for column, _, _ in select])
        return _Compiled(
            model=queryset.model, sql=sql, params=tuple(params), slots=tuple(slots),
            init_list=tuple(column.target.attname for column, _, _ in select[start:end]),
            start=start, end=end,
            converters=tuple((index, tuple(functions), expression)
                             for index, (functions, expression) in converters.items()))


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a text key, not {type(value).__name__}")
    return value
