"""What a column can hold: the checks behind PostgreSQL's data errors (out of range, too long, a NUL
character), in Python. The cursor decoder refuses a crafted value with them before querying, and
the API's error mapping uses them to name the field a refused statement was about."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from typing import Any

from django.db import connection, models


def has_nul(value: Any) -> bool:
    """A NUL character anywhere in ``value`` (nested JSON included; psycopg's Json wrappers too)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_nul(v) for v in value)
    obj = getattr(value, "obj", None)
    return obj is not None and has_nul(obj)


def column_refuses(field: models.Field[Any, Any], value: Any) -> bool:
    """Would PostgreSQL refuse ``value`` for ``field``'s column with a data error?"""
    if isinstance(value, (list, tuple)) and not isinstance(field, models.JSONField):
        return any(column_refuses(field, item) for item in value)  # an array, or a bulk UNNEST
    if has_nul(value):
        return True
    if isinstance(value, str):
        return field.max_length is not None and len(value) > field.max_length
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return True
        if isinstance(field, models.DecimalField) and value != 0:
            return value.adjusted() + 1 > field.max_digits - field.decimal_places
        return False
    if (isinstance(value, int) and not isinstance(value, bool)
        and isinstance(field, models.IntegerField)):
        low, high = connection.ops.integer_field_range(field.get_internal_type())
        return (low is not None and value < low) or (high is not None and value > high)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return not 1 <= value.year <= 9999
    return False
