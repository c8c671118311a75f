"""What each kind of import reads (SPEC §4.8): its columns, which are required, how a key is
compared for ``duplicate_in_file``, the scope it needs, and the batch service that writes it.

A column's type says how a CSV cell becomes a value (NDJSON values are taken as the JSON has them,
so ``"2"`` for a count is refused as the API refuses it). An empty CSV cell is ``""`` for a field
that may be blank (a description, a phone) and "not given" for one that may not (a price: kept on
an existing row, the default or a "required" error on a new one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from catalog import services as catalog
from customers import services as customers
from inventory import services as inventory
from stateset.bulk import CellInvalid, RowResult

TEXT, INT, BOOL, JSON = "text", "int", "bool", "json"
_INT = re.compile(r"^[+-]?\d{1,18}$")
_TRUE, _FALSE = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str = TEXT
    blank: bool = False  # an empty CSV cell is "" (else: not given)

    def from_csv(self, cell: str) -> Any:
        if not cell.strip():
            return "" if self.blank and self.type == TEXT else None
        if self.type == TEXT:
            return cell
        if self.type == INT:
            if not _INT.match(cell.strip()):
                raise CellInvalid("invalid", "A valid integer is required.")
            return int(cell)
        if self.type == BOOL:
            word = cell.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise CellInvalid("invalid", "Use true or false.")
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError:
            raise CellInvalid("invalid_json", "Not valid JSON.") from None


Apply = Callable[..., list[RowResult]]


@dataclass(frozen=True)
class ImportKind:
    name: str
    columns: tuple[Column, ...]
    required: tuple[str, ...]  # headers a CSV file must have
    scope: str  # what the key must hold besides imports:write
    key_columns: tuple[str, ...]  # a repeat of these (any case) is duplicate_in_file
    apply: Apply
    one_of: tuple[str, ...] = ()  # exactly one of these headers
    ignored: tuple[str, ...] = ()  # read-only columns an export writes and an import skips
    key_column: str | None = None  # the column named by a duplicate_in_file error

    @property
    def names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def key(self, values: Mapping[str, Any]) -> str | None:
        parts = []
        for name in self.key_columns:
            value = values.get(name)
            if not isinstance(value, str) or not value.strip():
                return None
            parts.append(value.strip().upper() if name != "email" else value.strip().lower())
        return "\x1f".join(parts)[:400]

    def write(self, rows: Sequence[Mapping[str, Any]], *, mode: str, dry_run: bool, actor: str,
              import_id: str) -> list[RowResult]:
        return self.apply(rows=rows, mode=mode, dry_run=dry_run, actor=actor,
                          reference_id=import_id)


def _products(*, rows: Sequence[Mapping[str, Any]], mode: str, dry_run: bool,
              **_: Any) -> list[RowResult]:
    return catalog.products_import(rows=rows, mode=mode, dry_run=dry_run)


def _customers(*, rows: Sequence[Mapping[str, Any]], mode: str, dry_run: bool,
               **_: Any) -> list[RowResult]:
    return customers.customers_import(rows=rows, mode=mode, dry_run=dry_run)


def _inventory(*, rows: Sequence[Mapping[str, Any]], mode: str, dry_run: bool, actor: str,
               reference_id: str) -> list[RowResult]:
    return inventory.stock_import(rows=rows, mode=mode, dry_run=dry_run, actor=actor,
                                  reference_id=reference_id)


PRODUCTS = ImportKind(
    name="products",
    columns=(Column("sku"), Column("name"), Column("description", blank=True), Column("price"),
             Column("currency"), Column("is_active", BOOL), Column("attributes", JSON)),
    required=("sku", "name", "price"),
    scope="catalog:write",
    key_columns=("sku",),
    key_column="sku",
    apply=_products,
)

CUSTOMERS = ImportKind(
    name="customers",
    columns=(Column("email"), *(Column(name, blank=True) for name in customers.IMPORT_COLUMNS[1:])),
    required=("email",),
    scope="customers:write",
    key_columns=("email",),
    key_column="email",
    apply=_customers,
)

INVENTORY = ImportKind(
    name="inventory",
    columns=(Column("sku"), Column("location_code"), Column("on_hand", INT),
             Column("quantity", INT)),
    required=("sku", "location_code"),
    one_of=("on_hand", "quantity"),
    ignored=("reserved", "available"),
    scope="inventory:write",
    key_columns=("sku", "location_code"),
    apply=_inventory,
)

KINDS = {kind.name: kind for kind in (PRODUCTS, CUSTOMERS, INVENTORY)}
