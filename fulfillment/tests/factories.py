"""factory_boy factories for the fulfillment tests: shipments through the services."""

from __future__ import annotations

from typing import Any

import factory

from fulfillment import services
from fulfillment.models import Shipment
from orders.tests.factories import OrderFactory


class ShipmentFactory(factory.Factory):
    """A pending shipment of everything still open on ``order`` (an order of one stocked unit
    unless given), made by ``fulfillment.services.shipment_create``; other keywords (``carrier``,
    ``tracking_number``, ``items``, ``location_id``…) go to the service."""

    class Meta:
        model = Shipment

    order = factory.SubFactory(OrderFactory)
    carrier = "ups"

    @classmethod
    def _create(cls, model_class: type[Shipment], *args: Any, order: Any,
                **kwargs: Any) -> Shipment:
        return services.shipment_create(order_id=order.id, **kwargs).shipment
