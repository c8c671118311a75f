"""Read replicas (the guide's "Database Read Replicas"): reads go to a replica chosen by
``[database] read_preference``; writes, and every query of a request that writes (POST, PATCH, ...)
or runs inside a transaction, go to the primary, so a client reads its own writes."""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import random
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connections, router
from django.db.models import F
from django.db.models.fields import NOT_PROVIDED, AutoFieldMixin, Field
from django.utils import timezone

from stateset.errors import PreconditionFailed

_pinned: contextvars.ContextVar[bool] = contextvars.ContextVar("pinned_to_primary", default=False)


@contextlib.contextmanager
def pin_primary(pinned: bool = True) -> Iterator[None]:
    token = _pinned.set(pinned or _pinned.get())
    try:
        yield
    finally:
        _pinned.reset(token)


class ReplicaRouter:
    def __init__(self) -> None:
        self.replicas = [alias for alias in settings.DATABASES if alias.startswith("replica_")]
        self._cycle = itertools.cycle(self.replicas) if self.replicas else None

    def db_for_read(self, model: Any, **hints: Any) -> str:
        if (
            not self.replicas
            or settings.READ_PREFERENCE == "primary"
            or _pinned.get()
            or connections["default"].in_atomic_block
        ):
            return "default"
        if settings.READ_PREFERENCE == "random":
            return random.choice(self.replicas)
        return next(self._cycle)  # type: ignore[arg-type]  # set whenever there are replicas

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"


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


def insert_rows(objs: list[Any], *, returning: tuple[str, ...] = ()) -> None:
    """``INSERT`` model instances in one statement, without the ORM's per-call query compilation
    (about a millisecond of CPU per ``bulk_create`` on the order hot path, measured by
    ``loadtest/profile.py``). Values go through each field's ``get_db_prep_save`` exactly as the ORM
    would; fields with a database default and no Python default (``db_default``) and generated
    fields are left to PostgreSQL, and ``returning`` names fields read back onto the instances.
    No signals are sent (nothing here listens to them)."""
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
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returned:
            for obj, values in zip(objs, cursor.fetchall(), strict=True):
                for field, value in zip(returned, values, strict=True):
                    setattr(obj, field.attname, value)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
