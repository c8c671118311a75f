"""Celery entry points of the inventory domain: each calls one service."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from inventory import services

logger = logging.getLogger("inventory")


@shared_task(name="inventory.tasks.reservations_expire", ignore_result=True)
def reservations_expire(batch_size: int = 500) -> int:
    """Every minute (beat): give back the stock of reservations whose ``expires_at`` has passed."""
    expired = services.reservations_expire(batch_size=batch_size)
    if expired:
        logger.info("expired %d reservation(s)", expired, extra={"expired": expired})
    return expired


@shared_task(name="inventory.tasks.inventory_reconcile_report", ignore_result=True)
def inventory_reconcile_report() -> dict[str, Any]:
    """Nightly (beat), report only: rows whose ``reserved`` differs from their active reservations,
    and products whose backorders wait beside sellable stock. Repairs are an operator's decision:
    ``manage.py reconcile_inventory --fix``."""
    drifts = services.inventory_reconcile(fix=False)
    for drift in drifts:
        logger.warning("inventory drift", extra=drift.as_dict())
    if drifts:
        logger.error(
            "%d inventory row(s) drifted from their reservations; run reconcile_inventory --fix",
                     len(drifts))
    stranded = services.backorders_stranded(fix=False)
    for product in stranded:
        logger.warning("backorders waiting beside sellable stock",
                       extra={"product_id": str(product.product_id), "sku": product.sku,
                              "waiting": product.waiting, "sellable": product.sellable})
    if stranded:
        logger.error("%d product(s) have backorders waiting beside sellable stock; run "
                     "reconcile_inventory --fix", len(stranded))
    return {"drifted": len(drifts), "rows": [d.as_dict() for d in drifts[:100]],
            "stranded_backorders": len(stranded)}
