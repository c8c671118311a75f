"""factory_boy factories for the returns tests: returns through the service, of orders shipped
with the factories of orders (never fulfillment: a sibling); and the API calls the tests repeat."""

from __future__ import annotations

from typing import Any

import factory

from returns import services
from returns.models import Return
from stateset.testing import data_of, error_of


class ReturnFactory(factory.Factory):
    """A requested return made by ``returns.services.return_create``:
    ``ReturnFactory(order=shipped_order, lines=[(order_item, quantity, condition), ...])``; other
    keywords (``reason``, ``notes``…) go to the service."""

    class Meta:
        model = Return

    reason = "does not fit"

    @classmethod
    def _create(cls, model_class: type[Return], *args: Any, order: Any,
                lines: list[tuple[Any, int, str]], **kwargs: Any) -> Return:
        return services.return_create(order_id=order.id, items=[
            services.ReturnLineInput(order_item_id=item.id, quantity=quantity, condition=condition)
            for item, quantity, condition in lines], **kwargs).rma


def request_return(api, shipped, *lines, reason="does not fit", status=201):
    """lines: (sku, quantity, condition[, restock]) → the POST /returns answer's data (or error)."""
    items = []
    for sku, quantity, condition, *rest in lines:
        item = {"order_item_id": str(shipped.items[sku].id), "quantity": quantity,
                "condition": condition}
        if rest:
            item["restock"] = rest[0]
        items.append(item)
    response = api.post("/api/v1/returns",
                        {"order_id": str(shipped.order.id), "reason": reason, "items": items},
                        format="json")
    return data_of(response, status) if status < 400 else error_of(response, status)


def act(api, rma, verb, status=200):
    response = api.post(f"/api/v1/returns/{rma['id']}/{verb}", {}, format="json")
    return data_of(response, status) if status < 400 else error_of(response, status)
