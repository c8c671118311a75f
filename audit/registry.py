"""Which models are audited, by ``<app>.<model>`` label, and the scope that may read their trail."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import models

from stateset.api.auth import APP_RESOURCES, MANAGED_RESOURCES, MODEL_RESOURCES


@dataclass(frozen=True)
class Audited:
    label: str  # "catalog.product"
    model: type[models.Model]
    event_model: Any
    read_scope: str  # "catalog:read"; "keys:manage" / "webhooks:manage" for the managed ones


def _read_scope(label: str) -> str:
    resource = MODEL_RESOURCES.get(label) or APP_RESOURCES[label.partition(".")[0]]
    return f"{resource}:{'manage' if resource in MANAGED_RESOURCES else 'read'}"


@cache
def audited() -> dict[str, Audited]:
    from audit import models as audit_models

    found: dict[str, Audited] = {}
    for event_model in (audit_models.ProductEvent, audit_models.InventoryItemEvent,
                        audit_models.ApiKeyEvent, audit_models.EndpointEvent,
                        audit_models.OrderEvent, audit_models.CustomerEvent,
                        audit_models.ShipmentEvent, audit_models.ReturnEvent,
                        audit_models.LocationEvent, audit_models.AddressEvent,
                        audit_models.PaymentEvent, audit_models.OrderItemEvent):
        tracked = event_model.pgh_tracked_model
        label = tracked._meta.label_lower
        found[label] = Audited(label, tracked, event_model, _read_scope(label))
    return found


def audited_tables() -> tuple[str, ...]:
    """``'"catalog_product"'``, quoted as Django's SQL names them, for a cheap substring test."""
    return tuple(f'"{entry.model._meta.db_table}"' for entry in audited().values())


def for_model(model: type[models.Model]) -> Audited | None:
    return audited().get(model._meta.label_lower)
