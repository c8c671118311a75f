"""Cache-aside semantics (SPEC §7) on whichever cache backend the run uses (Redis when REDIS_URL is
set)."""

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import override_settings

from stateset.cache import EntityCache, increment

pytestmark = pytest.mark.django_db(transaction=True)


def test_read_through_then_hit():
    products = EntityCache("products")
    calls = []
    load = lambda: calls.append(1) or {"v": len(calls)}  # noqa: E731
    assert products.get_or_load("products:1", load) == {"v": 1}
    assert products.get_or_load("products:1", load) == {"v": 1}
    assert len(calls) == 1


def test_invalidation_drops_at_once_and_after_commit_and_blocks_a_stale_refill():
    products = EntityCache("products")
    products.get_or_load("products:2", lambda: {"v": "old"})
    with transaction.atomic():
        products.invalidate("products:2")
        # Not committed yet: readers are sent to the database (the loader), never the cached value.
        assert products.get_or_load("products:2", lambda: {"v": "from-db"}) == {"v": "from-db"}
        # A reader that loaded the old row cannot put it back while the write is in flight...
        cache.add("products:2", {"v": "old"})
    # ...nor after the commit...
    cache.add("products:2", {"v": "old"})
    # ...so the next reader loads the committed value.
    assert products.get_or_load("products:2", lambda: {"v": "new"}) == {"v": "new"}


def test_a_rolled_back_write_costs_only_a_miss():
    products = EntityCache("products")
    products.get_or_load("products:3", lambda: {"v": "kept"})
    with pytest.raises(RuntimeError), transaction.atomic():
        products.invalidate("products:3")
        raise RuntimeError
    assert products.get_or_load("products:3", lambda: {"v": "reloaded"}) == {"v": "reloaded"}


def test_group_invalidation_orphans_every_key_of_the_group():
    orders = EntityCache("orders")
    first = orders.group_key("customer:7", "page", 1)
    orders.get_or_load(first, lambda: ["a"])
    orders.invalidate_group("customer:7")
    second = orders.group_key("customer:7", "page", 1)
    assert second != first
    assert orders.get_or_load(second, lambda: ["b"]) == ["b"]
    assert orders.group_key("customer:8", "page", 1).endswith("v1:page:1")  # other groups untouched


def test_increment_starts_a_missing_counter_and_then_costs_one_call(monkeypatch):
    cache.delete("counter:a")
    assert increment("counter:a", initial=1, timeout=30) == 1
    assert cache.get("counter:a") == 1
    if hasattr(cache, "ttl"):  # django-redis: the window's expiry is set when the counter starts
        assert 0 < cache.ttl("counter:a") <= 30
    adds = []
    real_add = cache.add
    monkeypatch.setattr(cache, "add", lambda *a, **k: adds.append(a) or real_add(*a, **k))
    assert increment("counter:a", initial=1, timeout=30) == 2
    assert increment("counter:a", 5, initial=5, timeout=30) == 7
    assert adds == []  # an existing counter is one increment, no add first


def test_increment_when_another_caller_started_the_counter_first(monkeypatch):
    cache.delete("counter:b")
    real_add = cache.add

    def racer_first(key, value, timeout=None):
        real_add(key, 10, timeout=timeout)  # another process started it in between
        return real_add(key, value, timeout=timeout)

    monkeypatch.setattr(cache, "add", racer_first)
    assert increment("counter:b", initial=1, timeout=30) == 11


def test_a_group_bump_moves_a_missing_version_past_the_implicit_one():
    orders = EntityCache("orders")
    cache.delete(orders.group_version_key("customer:x"))
    before = orders.group_key("customer:x", "page")
    orders.invalidate_group("customer:x")
    after = orders.group_key("customer:x", "page")
    assert before.endswith(":v1:page") and after.endswith(":v2:page")


def test_ttl_zero_disables_caching(settings):
    settings.CACHE_TTLS = {**settings.CACHE_TTLS, "inventory": 0}
    inventory = EntityCache("inventory")
    calls = []
    for _ in range(2):
        inventory.get_or_load("inventory:1", lambda: calls.append(1) or 1)
    assert len(calls) == 2


@override_settings(CACHES={"default": {
    "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
    "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}})
def test_redis_down_serves_from_the_loader(client):
    products = EntityCache("products")
    assert products.get_or_load("products:9", lambda: {"v": "db"}) == {"v": "db"}
    products.invalidate("products:9")
    products.invalidate_group("g")
    assert client.get("/api/v1/health").status_code == 200
