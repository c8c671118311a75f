"""The one JSON encoder of the project: Decimal → string, datetimes RFC 3339 with ``Z``, UUIDs as
strings (orjson). The API renders with it; the platform stores idempotent answers with it."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
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


_INT64 = range(-(2**63), 2**63)


def _big_ints_as_floats(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value in _INT64 else float(value)
    if isinstance(value, dict):
        return {key: _big_ints_as_floats(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_big_ints_as_floats(item) for item in value]
    return value


def dumps(value: Any) -> bytes:
    """The one JSON encoder: Decimal → string, datetimes RFC 3339 with ``Z``, UUIDs as strings."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        # A client's float such as 1e20 in a JSON field comes back from jsonb as the integer
        # 100000000000000000000, which orjson cannot write: send it as the float it was.
        return orjson.dumps(_big_ints_as_floats(value), default=_default, option=_OPTIONS)


def fingerprint(value: Any) -> str:
    """SHA-256 of ``value`` as canonical JSON (object keys sorted): two requests that say the same
    thing — keys in another order, other whitespace — have one fingerprint."""
    try:
        encoded = orjson.dumps(value, default=_default, option=_OPTIONS | orjson.OPT_SORT_KEYS)
    except TypeError:
        encoded = orjson.dumps(_big_ints_as_floats(value), default=_default,
                               option=_OPTIONS | orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
