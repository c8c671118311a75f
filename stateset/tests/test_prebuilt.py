"""``stateset.db.Prebuilt``: a queryset resolved once and handed out as clones never serves the
rows of an earlier call, and a clone's filters and slices never reach the next one."""

from __future__ import annotations

import pytest

from stateset.db import Prebuilt
from stateset.models import ApiKey

pytestmark = pytest.mark.django_db

names = Prebuilt(lambda: ApiKey.objects.values("name").order_by("name"))


def add(name: str) -> None:
    ApiKey.objects.create(name=name, prefix=name[:8], key_hash=f"hash-{name}")


def test_each_call_reads_the_table_as_it_is_now():
    add("first")
    assert [row["name"] for row in names()] == ["first"]
    add("second")
    assert [row["name"] for row in names()] == ["first", "second"]


def test_a_callers_filter_and_slice_stay_with_its_clone():
    add("alpha")
    add("beta")
    assert [row["name"] for row in names().filter(name="beta")[:1]] == ["beta"]
    assert [row["name"] for row in names()] == ["alpha", "beta"]
    assert names().query.low_mark == 0 and names().query.high_mark is None


def test_the_prebuilt_queryset_itself_holds_no_rows():
    add("gamma")
    list(names())
    assert names._queryset is not None and names._queryset._result_cache is None
