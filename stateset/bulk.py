"""What a batch service answers for each row it was given (SPEC §4.8): the catalog, customers and
inventory each have one (``products_import``, ``customers_import``, ``stock_import``) and the
imports app tallies their answers. A bad row is answered, never raised: the good rows of the same
batch are still applied."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


class Mode(enum.StrEnum):
    UPSERT = "upsert"  # create what is new, change what differs
    CREATE = "create"  # an existing key is a failed row (``already_exists``)


@dataclass(frozen=True)
class RowError:
    """One problem of one row. ``column`` names the input column (None: the row as a whole)."""

    column: str | None
    code: str
    message: str

    def as_dict(self, row: int) -> dict[str, Any]:
        return {"row": row, "column": self.column, "code": self.code, "message": self.message}


@dataclass
class RowResult:
    outcome: Outcome = Outcome.UNCHANGED
    errors: list[RowError] = field(default_factory=list)

    @classmethod
    def failed(cls, *errors: RowError) -> RowResult:
        return cls(Outcome.FAILED, list(errors))

    def fail(self, *errors: RowError) -> None:
        self.outcome = Outcome.FAILED
        self.errors.extend(errors)

    @property
    def ok(self) -> bool:
        return self.outcome is not Outcome.FAILED


class CellInvalid(Exception):
    """Raised by a value check; the batch service turns it into the row's :class:`RowError`."""

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message
        super().__init__(message)


def cell_text(value: Any, max_length: int, *, blank: bool = False) -> str:
    """An import cell as the API's text fields take it: a string, trimmed, no NUL, at most
    ``max_length``, not empty unless ``blank``; ``None`` is ``required``. Raises CellInvalid."""
    if value is None:
        raise CellInvalid("required", "This field is required.")
    if not isinstance(value, str):
        raise CellInvalid("invalid", "Not a valid string.")
    text: str = value.strip()
    if "\x00" in text:
        raise CellInvalid("null_character", "Null characters are not allowed.")
    if not text and not blank:
        raise CellInvalid("blank", "This field may not be blank.")
    if len(text) > max_length:
        raise CellInvalid("max_length", f"At most {max_length} characters.")
    return text


def first_of_each(keys: Iterable[str | None]) -> list[bool]:
    """For each key, whether it is its first appearance (None keys always count as first): the
    later rows of a key repeated in one batch fail with ``duplicate_in_file``."""
    seen: set[str] = set()
    out = []
    for key in keys:
        out.append(key is None or key not in seen)
        if key is not None:
            seen.add(key)
    return out


def duplicate_error(column: str | None) -> RowError:
    return RowError(column, "duplicate_in_file", "An earlier row of this file has the same key.")


def exists_error(column: str | None) -> RowError:
    return RowError(column, "already_exists",
                    "A record with this key already exists (mode=create).")


def check_json_value(value: Any, *, max_depth: int = 16, max_bytes: int = 65536) -> None:
    """SPEC §3's limits of a client's JSON value: at most ``max_depth`` levels, ``max_bytes``
    encoded, no NUL character in a key or a string. Raises CellInvalid."""
    from stateset.encoding import dumps

    def walk(node: Any, depth: int) -> None:
        # A level is an object or an array: 16 nested objects holding a string are 16 levels.
        if depth > max_depth and isinstance(node, (dict, list)):
            raise CellInvalid("too_deep", f"Nested more than {max_depth} levels.")
        if isinstance(node, dict):
            for key, item in node.items():
                if "\x00" in str(key):
                    raise CellInvalid("null_character", "Null characters are not allowed.")
                walk(item, depth + 1)
        elif isinstance(node, list):
            for item in node:
                walk(item, depth + 1)
        elif isinstance(node, str) and "\x00" in node:
            raise CellInvalid("null_character", "Null characters are not allowed.")

    walk(value, 1)
    if len(dumps(value)) > max_bytes:
        raise CellInvalid("too_large", f"At most {max_bytes} bytes of JSON.")
