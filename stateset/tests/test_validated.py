"""``stateset.api.serializers.validated`` reuses one serializer per class and thread: a body is
judged exactly as a new serializer would judge it, whatever the bodies before it were, and nothing
of one body reaches the next."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rest_framework import serializers

from stateset.api.serializers import StrictIntegerField, StrictSerializer, validated


class LineIn(StrictSerializer):
    sku = serializers.CharField(max_length=10)
    quantity = StrictIntegerField(min_value=1)


class BodyIn(StrictSerializer):
    name = serializers.CharField(max_length=20)
    note = serializers.CharField(required=False)
    lines = LineIn(many=True)


def fresh(body: Any, *, partial: bool = False) -> tuple[bool, Any]:
    serializer = BodyIn(data=body, partial=partial)
    ok = serializer.is_valid()
    return ok, (dict(serializer.validated_data) if ok else serializer.errors)


BODIES: list[Any] = [
    {"name": "a", "lines": [{"sku": "X", "quantity": 1}]},
    {"name": "b", "note": "n", "lines": [{"sku": "Y", "quantity": 2}, {"sku": "Z", "quantity": 3}]},
    {"name": "c", "lines": [{"sku": "X", "quantity": "2"}]},
    {"name": "d"},
    {"lines": [{"sku": "TOO-LONG-SKU", "quantity": 0}], "extra": 1},
    "not an object",
    {"name": "e", "lines": [{"sku": "W", "quantity": 4}]},
]


@pytest.mark.parametrize("partial", [False, True])
def test_every_body_answers_as_with_a_new_serializer(partial):
    for _ in range(2):
        for body in BODIES:
            ok, expected = fresh(body, partial=partial)
            if ok:
                assert validated(BodyIn, body, partial=partial) == expected
            else:
                with pytest.raises(serializers.ValidationError) as caught:
                    validated(BodyIn, body, partial=partial)
                assert caught.value.detail == expected


def test_nothing_of_a_body_stays_on_the_reused_serializer():
    validated(BodyIn, BODIES[1])
    with pytest.raises(serializers.ValidationError):
        validated(BodyIn, BODIES[4])
    kept = list(_pool().values())
    assert kept, "the serializer is kept for the next body"
    for serializer in kept:
        assert not hasattr(serializer, "initial_data")
        assert not {"_validated_data", "_errors", "_data"} & set(vars(serializer))


def _pool() -> dict[Any, Any]:
    from stateset.api import serializers as module

    return module._reusable.__dict__.get("serializers", {})


def test_threads_validating_at_once_get_their_own_answers():
    answers: dict[int, Any] = {}
    barrier = threading.Barrier(6)

    def work(index: int) -> None:
        barrier.wait()
        for _ in range(200):
            body = {"name": f"t{index}", "lines": [{"sku": f"S{index}", "quantity": index + 1}]}
            got = validated(BodyIn, body)
            if got["name"] != f"t{index}" or got["lines"][0]["quantity"] != index + 1:
                answers[index] = got
                return
        answers[index] = "ok"

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == dict.fromkeys(range(6), "ok")
