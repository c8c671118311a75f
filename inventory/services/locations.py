"""Locations: where stock is held (SPEC §4.3).
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from django.db import IntegrityError, transaction

from inventory import locks
from inventory.models import Location
from inventory.services.common import LOCATION_CODE_RE
from inventory.services.reconcile import backorders_stranded
from stateset.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from stateset.inputs import clean_text


def _address(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed("address must be an object.",
                               details={"address": ["Must be a JSON object."]})

    def check(node: Any, depth: int) -> None:
        if depth > 4:
            raise ValidationFailed("address is nested too deeply.",
                                   details={"address": ["Too deeply nested."]})
        if isinstance(node, str) and ("\x00" in node or len(node) > 500):
            raise ValidationFailed("address has an invalid string.",
                                   details={
                                       "address": [
                                           "Strings must be at most 500 characters, without null "
                                           "characters."]})
        if isinstance(node, dict):
            if len(node) > 50:
                raise ValidationFailed("address has too many fields.",
                                       details={"address": ["At most 50 fields."]})
            for key, item in node.items():
                check(key, depth + 1)
                check(item, depth + 1)
        elif isinstance(node, list):
            if len(node) > 50:
                raise ValidationFailed("address has too many items.",
                                       details={"address": ["At most 50 items."]})
            for item in node:
                check(item, depth + 1)

    check(value, 0)
    return value


def _priority(value: Any) -> int:
    if (isinstance(value, bool) or not isinstance(value, int)
        or not -1_000_000 <= value <= 1_000_000):
        raise ValidationFailed("priority must be an integer between -1000000 and 1000000.",
                               details={
                                   "priority": [
                                       "Must be an integer between -1000000 and 1000000."]})
    return value


def location_create(*, code: str, name: str, priority: int = 100,
                    address: dict[str, Any] | None = None, is_active: bool = True) -> Location:
    """Create a location. Raises ValidationFailed for a malformed code/name/priority/address and
    Conflict(code="location_exists") when the code is taken (case-insensitively)."""
    code = clean_text(code, "code", 32, required=True)
    if not LOCATION_CODE_RE.match(code):
        raise ValidationFailed("Invalid location code.", details={
            "code": [
                "Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 32."]})
    name = clean_text(name, "name", 200, required=True)
    priority = _priority(priority)
    address = _address(address)
    try:
        with transaction.atomic():
            return Location.objects.create(code=code, name=name, priority=priority, address=address,
                                           is_active=bool(is_active))
    except IntegrityError:
        raise Conflict(f"A location with code {code} exists.", code="location_exists",
                       details={"code": code}) from None


def location_update(*, location_id: uuid.UUID, expected_version: int | None = None,
                    actor: str = "", **changes: Any) -> Location:
    """Change ``name``, ``priority``, ``address`` or ``is_active``; bumps ``version``. Locks the
    location row. Re-activating a location serves the backorders its sellable stock can fill, after
    commit (``backorders_stranded`` for that location: a transaction per product, oldest order
    first; the nightly report names any a crash left). Raises NotFound, PreconditionFailed (412)
    on a stale ``expected_version``,
    ValidationFailed for an unknown field or bad value."""
    allowed = {"name", "priority", "address", "is_active"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationFailed("Unknown field.", details={k: ["Unknown field."] for k in unknown})
    clean: dict[str, Any] = {}
    if "name" in changes:
        clean["name"] = clean_text(changes["name"], "name", 200, required=True)
    if "priority" in changes:
        clean["priority"] = _priority(changes["priority"])
    if "address" in changes:
        clean["address"] = _address(changes["address"])
    if "is_active" in changes:
        if not isinstance(changes["is_active"], bool):
            raise ValidationFailed("is_active must be a boolean.",
                                   details={"is_active": ["Must be a boolean."]})
        clean["is_active"] = changes["is_active"]
    with transaction.atomic():
        location = locks.lock_location(location_id)
        if location is None:
            raise NotFound("No such location.", code="location_not_found")
        if expected_version is not None and location.version != expected_version:
            raise PreconditionFailed(details={"current_version": location.version})
        activated = clean.get("is_active") is True and not location.is_active
        for key, value in clean.items():
            setattr(location, key, value)
        location.version += 1
        location.save(update_fields=[*clean, "version", "updated_at"])
        if activated:
            # Its stock is sellable again: orders waiting for it are served, oldest first, once
            # this commits (their rows are locked after the location otherwise, against the order).
            # robust: a failure there is logged, never the answer to a change that committed (the
            # nightly report names what is left waiting).
            transaction.on_commit(functools.partial(
                backorders_stranded, fix=True, actor=actor or "system:location",
                location_id=location.id), robust=True)
    return location
