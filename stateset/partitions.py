"""Monthly range partitions in Django (design note ``docs/partitioning.md``).

One helper for every partitioned table (``orders_order``, ``orders_orderevent``,
``inventory_stockmovement``):

- :class:`CreatePartitionedModel` — a ``CreateModel`` whose database side creates the table
  ``PARTITION BY RANGE (created_at)`` with ``PRIMARY KEY (id, created_at)``. The migration state is
  a plain ``CreateModel`` (``id`` stays Django's primary key), so ``makemigrations`` sees no drift.
  Indexes declared on the model are created on the parent and so on every partition.
- :class:`AddCompositeForeignKey` — the real foreign key from a child to a partitioned parent,
  ``(parent_id, parent_created_at) REFERENCES parent (id, created_at)``.
- :func:`ensure_partitions` — creates the default partition and the monthly ones (idempotent);
  used by the migrations, ``create_partitions`` and the daily beat task. When the default partition
  already holds rows of a new month, they are moved into it (detach, create, move, attach).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import connection as default_connection
from django.db import migrations, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.backends.utils import CursorWrapper
    from django.db.migrations.state import ProjectState, StateApps

PARTITION_KEY = "created_at"


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def partition_name(table: str, month: dt.date) -> str:
    return f"{table}_p{month:%Y_%m}"


def default_partition_name(table: str) -> str:
    return f"{table}_default"


class CreatePartitionedModel(migrations.CreateModel):
    """``CreateModel`` whose table is range-partitioned by month on ``created_at``."""

    def database_forwards(self, app_label: str, schema_editor: BaseDatabaseSchemaEditor,
                          from_state: ProjectState, to_state: ProjectState) -> None:
        model = to_state.apps.get_model(app_label, self.name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        sql, params = schema_editor.table_sql(model)
        pk_column = model._meta.pk.column
        quoted_pk = schema_editor.quote_name(pk_column)
        # The single-column primary key becomes (id, created_at): PostgreSQL requires every unique
        # constraint of a partitioned table to contain the partition key.
        sql, replaced = re.subn(rf"({re.escape(quoted_pk)} [^,]*?) PRIMARY KEY", r"\1", sql,
                                count=1)
        if not replaced or not sql.endswith(")"):
            raise ValueError(f"unexpected CREATE TABLE shape for {model._meta.db_table}: {sql}")
        key = f"{quoted_pk}, {schema_editor.quote_name(PARTITION_KEY)}"
        sql = (
            f"{sql[:-1]}, PRIMARY KEY ({key})) PARTITION BY RANGE "
            f"({schema_editor.quote_name(PARTITION_KEY)})")
        schema_editor.execute(sql, params or None)
        indexes = schema_editor._model_indexes_sql(model)  # type: ignore[attr-defined]  # private
        schema_editor.deferred_sql.extend(indexes)

    def describe(self) -> str:
        return f"Create model {self.name} (partitioned by month on {PARTITION_KEY})"


class EnsurePartitions(migrations.RunPython):
    """Create the default partition and the months around today for ``table`` (forwards only)."""

    def __init__(self, table: str, months_back: int = 1, months_ahead: int = 3):
        self.table = table

        def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
            ensure_partitions(self.table, months_back=months_back, months_ahead=months_ahead,
                              connection=schema_editor.connection)

        super().__init__(forwards, migrations.RunPython.noop)

    def describe(self) -> str:
        return f"Create monthly partitions of {self.table}"


def AddCompositeForeignKey(  # noqa: N802 - reads like an operation class in a migration
    *, table: str, columns: tuple[str, str], ref_table: str,
    ref_columns: tuple[str, str] = ("id", PARTITION_KEY), name: str, on_delete: str = "RESTRICT",
) -> migrations.RunSQL:
    """A database-enforced reference to a partitioned parent (the ORM field uses
    db_constraint=False)."""
    cols = ", ".join(f'"{c}"' for c in columns)
    refs = ", ".join(f'"{c}"' for c in ref_columns)
    return migrations.RunSQL(
        sql=(
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" FOREIGN KEY ({cols}) '
            f'REFERENCES "{ref_table}" ({refs}) ON DELETE {on_delete} DEFERRABLE INITIALLY DEFERRED'
        ),
        reverse_sql=f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"',
    )


@dataclass
class PartitionInfo:
    name: str
    bounds: str
    rows_estimate: int


def partitioned_tables(connection: BaseDatabaseWrapper = default_connection) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_partitioned_table p
            JOIN pg_class c ON c.oid = p.partrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema()
            ORDER BY c.relname
            """
        )
        return [row[0] for row in cursor.fetchall()]


def list_partitions(table: str,
                    connection: BaseDatabaseWrapper = default_connection) -> list[PartitionInfo]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname, pg_get_expr(child.relpartbound, child.oid),
                   child.reltuples::bigint
            FROM pg_inherits i
            JOIN pg_class parent ON parent.oid = i.inhparent
            JOIN pg_class child ON child.oid = i.inhrelid
            WHERE parent.relname = %s
            ORDER BY child.relname
            """,
            [table],
        )
        return [PartitionInfo(name, bounds, max(int(rows), 0)) for name, bounds,
                rows in cursor.fetchall()]


def _exists(cursor: CursorWrapper, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return bool(cursor.fetchone()[0])


def ensure_partitions(
    table: str,
    *,
    months_ahead: int = 3,
    months_back: int = 0,
    today: dt.date | None = None,
    connection: BaseDatabaseWrapper = default_connection,
) -> list[str]:
    """Create the default partition and one partition per month from ``today - months_back`` to
    ``today + months_ahead``. Returns the names created (empty when all existed)."""
    today = today or dt.datetime.now(dt.UTC).date()
    first = add_months(month_start(today), -months_back)
    created: list[str] = []
    with connection.cursor() as cursor:
        default = default_partition_name(table)
        if not _exists(cursor, default):
            cursor.execute(f'CREATE TABLE IF NOT EXISTS "{default}" PARTITION OF "{table}" DEFAULT')
            created.append(default)
    for offset in range(months_back + months_ahead + 1):
        month = add_months(first, offset)
        if create_month_partition(table, month, connection=connection):
            created.append(partition_name(table, month))
    return created


def _referencing_foreign_keys(cursor: CursorWrapper, table: str) -> list[tuple[str, str, str]]:
    """(child table, constraint name, definition) of every foreign key pointing at ``table``
    (declared on the child's parent table, not inherited copies)."""
    cursor.execute(
        """
        SELECT child.relname, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        JOIN pg_class child ON child.oid = c.conrelid
        WHERE c.contype = 'f' AND c.confrelid = %s::regclass AND c.conparentid = 0
        ORDER BY child.relname, c.conname
        """,
        [table],
    )
    return [tuple(row) for row in cursor.fetchall()]


def create_month_partition(table: str, month: dt.date,
                           connection: BaseDatabaseWrapper = default_connection) -> bool:
    """Create ``table``'s partition for ``month``; rows of that month already in the default
    partition are moved into it in the same transaction. False when it already existed."""
    name = partition_name(table, month)
    start, end = month_start(month), add_months(month, 1)
    default = default_partition_name(table)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if _exists(cursor, name):
            return False
        stray = False
        if _exists(cursor, default):
            cursor.execute(
                f'SELECT EXISTS (SELECT 1 FROM "{default}" WHERE "{PARTITION_KEY}" >= %s AND '
                f'"{PARTITION_KEY}" < %s)',
                [_utc(start), _utc(end)],
            )
            stray = bool(cursor.fetchone()[0])
        bounds = (
            f"FOR VALUES FROM ('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} "
            "00:00:00+00')")
        if not stray:
            cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{table}" {bounds}')
            return True
        # Rows of this month landed in the default partition. Detach it, create the month, move the
        # rows through the parent (so they route to the new partition), re-attach — all in this
        # transaction. Foreign keys that reference the table are dropped for the move and re-added
        # (and so re-validated) at the end: detaching a referenced partition is refused, and a
        # cascading key would delete the children of the rows being moved. A rare repair, not a
        # routine path: it locks the child tables and re-checks their keys.
        references = _referencing_foreign_keys(cursor, table)
        for child, constraint, _definition in references:
            cursor.execute(f'ALTER TABLE "{child}" DROP CONSTRAINT "{constraint}"')
        cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{default}"')
        cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{table}" {bounds}')
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{default}" WHERE "{PARTITION_KEY}" >= %s AND '
            f'"{PARTITION_KEY}" < %s '
            f'RETURNING *) INSERT INTO "{table}" SELECT * FROM moved',
            [_utc(start), _utc(end)],
        )
        cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{default}" DEFAULT')
        for child, constraint, definition in references:
            cursor.execute(f'ALTER TABLE "{child}" ADD CONSTRAINT "{constraint}" {definition}')
        return True
