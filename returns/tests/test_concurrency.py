"""Races: concurrent requests for the same shipped units never return more than shipped."""

import pytest

from orders.models import OrderItem
from returns import services
from returns.models import Return, ReturnItem
from returns.tests.factories import ReturnFactory
from stateset.errors import ValidationFailed
from stateset.testing import run_threads


@pytest.mark.django_db(transaction=True)
def test_concurrent_return_requests_never_exceed_what_shipped(make_product, shipped_order):
    product = make_product(sku="A")
    shipped = shipped_order((product, 3))
    item = shipped.items["A"]

    def request(index):
        return services.return_create(order_id=shipped.order.id, reason=f"thread {index}", items=[
            services.ReturnLineInput(order_item_id=item.id, quantity=1 + index % 2,
                                     condition="resellable")])

    results = run_threads(8, request)
    made = [r for r in results if isinstance(r, services.CreatedReturn)]
    refused = [r for r in results if not isinstance(r, services.CreatedReturn)]
    assert all(isinstance(r, ValidationFailed) and r.code == "exceeds_returnable"
               for r in refused), refused
    requested = sum(line.quantity for r in made for line in r.items)
    # Never more than shipped; and with four one-unit requests in the race, the last unit is always
    # taken.
    assert requested == 3
    assert sum(ReturnItem.objects.values_list("quantity", flat=True)) == requested
    assert Return.objects.count() == len(made)


@pytest.mark.django_db(transaction=True)
def test_concurrent_receipts_of_one_return_restock_once(make_product, shipped_order):
    product = make_product(sku="A")
    shipped = shipped_order((product, 2))
    rma = ReturnFactory(order=shipped.order, lines=[(shipped.items["A"], 2, "resellable")])
    services.return_approve(return_id=rma.id)

    results = run_threads(4, lambda i: services.return_receive(return_id=rma.id))
    assert sum(isinstance(r, Return) for r in results) == 1
    assert all(getattr(r, "code", None) == "invalid_transition" for r in results
               if not isinstance(r, Return))
    assert OrderItem.objects.get(id=shipped.items["A"].id).quantity_returned == 2
