"""The one JSON encoder of the project: Decimal → string, datetimes RFC 3339 with ``Z``, UUIDs as
strings (orjson). The API renders with it; the platform stores idempotent answers with it."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import orjson

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    if isinstance(value, str):  # ErrorDetail and other str subclasses
        return str(value)
    if isinstance(value, (dt.timedelta,)):
        return value.total_seconds()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """The one JSON encoder: Decimal → string, datetimes RFC 3339 with ``Z``, UUIDs as strings."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
