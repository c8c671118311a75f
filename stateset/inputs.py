"""The checks services apply to free-text inputs. The API validates first; services are the last
word, because the admin, commands and other apps call them too."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from stateset.bulk import CellInvalid, check_json_value
from stateset.errors import ValidationFailed


def clean_text(value: object, name: str, max_length: int, *, required: bool = False) -> str:
    """``value`` stripped; ``None`` is ""; not a string, a NUL character (PostgreSQL refuses it),
    too long, or empty when ``required`` is ValidationFailed naming ``name``."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string.", details={name: ["Not a valid string."]})
    value = value.strip()
    if "\x00" in value:
        raise ValidationFailed(f"{name} contains a null character.",
                               details={name: ["Null characters are not allowed."]})
    if len(value) > max_length:
        raise ValidationFailed(f"{name} is too long.",
                               details={name: [f"At most {max_length} characters."]})
    if required and not value:
        raise ValidationFailed(f"{name} is required.", details={name: ["This field is required."]})
    return value


def clean_actor(value: str | None, max_length: int) -> str:
    """Who did it, as recorded on ledger and timeline rows: never refused, cut to the column."""
    return (value or "").replace("\x00", "")[:max_length]


def writable(fields: Mapping[str, Any], allowed: Collection[str]) -> dict[str, Any]:
    """``fields`` as a dict, or ValidationFailed naming every field a service does not change."""
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValidationFailed(f"These fields cannot be changed: {', '.join(unknown)}.",
                               details={name: ["Not writable."] for name in unknown})
    return dict(fields)


def clean_json_object(value: object, name: str) -> dict[str, Any]:
    """A JSON object a client stores (``metadata``, ``attributes``, an address snapshot) within
    SPEC §3's limits — 16 levels, 64 KiB encoded, no NUL character — whichever way it came (API,
    admin, import, command), so nothing stored can make a later read fail. ``None`` is ``{}``;
    ValidationFailed naming ``name`` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed(f"{name} must be a JSON object.",
                               details={name: ["Must be a JSON object."]})
    try:
        check_json_value(value)
    except CellInvalid as exc:
        raise ValidationFailed(f"{name}: {exc.message}", details={name: [exc.message]}) from None
    return value
