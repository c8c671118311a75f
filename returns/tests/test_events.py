"""SPEC §4.7 "every domain change is an event": each move of a return writes its ``return.*`` event
to the outbox with the change, exactly once, and a refused move writes none."""

from __future__ import annotations

import pytest

from returns.tests.factories import act, request_return
from webhooks.tests.factories import outbox

pytestmark = pytest.mark.django_db


def kinds(written: list[tuple[str, dict]]) -> list[str]:
    return [kind for kind, _ in written if kind.startswith("return.")]


def test_each_move_publishes_its_event_once_with_the_return_and_its_order(api, make_product,
                                                                          shipped_order):
    product = make_product(sku="EVR", price="10.00")
    shipped = shipped_order((product, 2))
    with outbox() as written:
        rma = request_return(api, shipped, ("EVR", 2, "resellable"))
    assert kinds(written) == ["return.requested"]
    requested = written[0][1]
    assert {k: requested[k] for k in ("return_id", "rma_number", "order_id", "order_number",
                                      "status")} == {
        "return_id": rma["id"], "rma_number": rma["rma_number"], "order_id": str(shipped.order.id),
        "order_number": shipped.order.order_number, "status": "requested"}
    assert [(i["sku"], i["quantity"], i["condition"]) for i in requested["items"]] == [
        ("EVR", 2, "resellable")]

    for verb, event_type, status in (("approve", "return.approved", "approved"),
                                     ("receive", "return.received", "received"),
                                     ("refund", "return.refunded", "refunded"),
                                     ("close", "return.closed", "closed")):
        with outbox() as written:
            act(api, rma, verb)
        assert kinds(written) == [event_type], verb
        payload = next(p for kind, p in written if kind == event_type)
        assert (payload["return_id"], payload["status"]) == (rma["id"], status)
        if verb == "receive":  # the units back on hand: inventory.received, movement "return"
            assert payload["items"][0]["location_id"] is not None
            assert [(p["movement"], p["quantity"]) for kind, p in written
                    if kind == "inventory.received"] == [("return", 2)]
        if verb == "refund":
            assert payload["refund_amount"] == "20.00"


def test_rejecting_publishes_return_rejected_once_and_a_409_nothing(api, make_product,
                                                                   shipped_order):
    shipped = shipped_order((make_product(sku="EVJ"), 1))
    rma = request_return(api, shipped, ("EVJ", 1, "resellable"))
    with outbox() as written:
        act(api, rma, "reject")
    assert kinds(written) == ["return.rejected"]
    with outbox() as refused:
        act(api, rma, "approve", status=409)  # rejected is final
        act(api, rma, "close", status=409)
    assert refused == []


def test_a_refused_request_publishes_nothing(api, make_product, shipped_order):
    shipped = shipped_order((make_product(sku="EVN"), 1))
    with outbox() as refused:
        request_return(api, shipped, ("EVN", 5, "resellable"), status=422)
    assert refused == []
