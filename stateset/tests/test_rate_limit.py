"""Per-key rate limits (SPEC §3): 429 with Retry-After and RateLimit-* headers."""

import pytest
from django.conf import settings

from stateset.testing import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("stateset.tests.urls")]
URL = "/api/v1/_test/things"


def test_a_keys_own_limit_answers_429_with_headers_and_writes_nothing(make_key):
    from stateset.models import ApiKey

    client = client_for(make_key("*", rate_limit="3/min"))
    answers = [client.post(URL, {"name": f"n{i}"}, format="json") for i in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert [a["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    limited = answers[-1]
    assert limited["RateLimit-Limit"] == "3"
    assert 1 <= int(limited["Retry-After"]) <= 60 and 0 <= int(limited["RateLimit-Reset"]) <= 60
    assert limited.json()["error"]["code"] == "rate_limited"
    assert not ApiKey.objects.filter(name="n3").exists()


def test_the_default_limit_applies_to_keys_without_their_own(make_key, settings):
    settings.API_RATE_LIMIT = "2/min"
    client = client_for(make_key("*"))
    statuses = [client.post(URL, {"name": f"d{i}"}, format="json").status_code for i in range(3)]
    assert statuses == [201, 201, 429]


def test_limits_are_per_key(make_key):
    first, second = client_for(make_key("*", rate_limit="1/min")), client_for(make_key("*",
                                                                                       rate_limit="1/min"))
    assert first.post(URL, {"name": "a"}, format="json").status_code == 201
    assert first.post(URL, {"name": "b"}, format="json").status_code == 429
    assert second.post(URL, {"name": "c"}, format="json").status_code == 201


def test_no_limit_means_no_headers(api):
    response = api.post(URL, {"name": "free"}, format="json")
    assert response.status_code == 201 and "RateLimit-Limit" not in response


needs_redis = pytest.mark.skipif(settings.API_KEY_CACHE != "redis",
                                 reason="the key generation lives in Redis only with REDIS_URL")
READ = "/api/v1/locations"


@needs_redis
def test_a_cached_key_is_counted_in_the_round_trip_that_reads_the_key_generation(make_key,
                                                                                 monkeypatch):
    """After its first request a key's window is moved in the same Redis pipeline as the read of
    the generation token, and the view does not count it again: the remaining count still falls
    by one a request and the limit still answers 429."""
    from stateset.api import views

    client = client_for(make_key("*", rate_limit="4/min"))
    # A read: this file's POSTs create keys, and every change to a key empties the key cache.
    first = client.get(READ)  # nothing cached yet: counted apart
    assert first.status_code == 200 and first["RateLimit-Remaining"] == "3"

    def counted_apart(*args, **kwargs):
        raise AssertionError("counted outside the generation's round trip")

    monkeypatch.setattr(views, "increment", counted_apart)
    answers = [client.get(READ) for _ in range(4)]
    assert [a["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]


@needs_redis
def test_a_key_whose_rate_changed_in_another_process_is_counted_in_its_new_window(make_key):
    """A process that has not yet seen a key change plans its count with the principal it cached
    (the old rate's window); the generation it reads in the same trip tells it the key changed,
    and the view counts the new window itself."""
    from stateset import services
    from stateset.keys import key_cache
    from stateset.models import ApiKey

    client = client_for(make_key("*", rate_limit="5/min"))
    assert client.get(READ)["RateLimit-Limit"] == "5"
    stale = (dict(key_cache._entries), key_cache._token)
    key = ApiKey.objects.get(revoked_at__isnull=True, rate_limit="5/min")
    services.api_key_update(api_key_id=key.id, fields={"rate_limit": "2/hour"})
    key_cache._entries, key_cache._token = stale  # this process has not seen the change yet
    answers = [client.get(READ) for _ in range(3)]
    assert [a["RateLimit-Limit"] for a in answers] == ["2", "2", "2"]
    assert [a["RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert [a.status_code for a in answers] == [200, 200, 429]


@needs_redis
def test_a_counter_redis_refuses_is_counted_by_the_view_and_the_key_still_authenticates(
        make_key, monkeypatch):
    """A rate-limit counter that is not an integer fails only its own command in the pipeline:
    the generation is still read (no breaker), and the view's own count answers."""
    from django.core.cache import cache
    from django_redis import get_redis_connection

    from stateset.api.auth import rate_window
    from stateset.keys import generation, hash_key, key_cache

    monkeypatch.setattr(generation, "_skip_until", 0.0)
    raw = make_key("*", rate_limit="4/min")
    client = client_for(raw)
    assert client.get(READ).status_code == 200
    window = rate_window(key_cache.peek(hash_key(raw)))
    get_redis_connection("default").set(cache.make_key(window.key), "not a number", ex=60)
    answer = client.get(READ)
    assert answer.status_code == 200
    assert "RateLimit-Limit" not in answer  # the view's count failed too: no limit, no 500
    assert generation._skip_until == 0.0  # the generation was read: no breaker


@needs_redis
def test_requests_refused_before_the_limit_use_none_of_the_budget(make_key):
    """The window is counted with the key's authentication, before DRF checks the scope: a
    request refused for its scope is taken back, as when only the limit counted."""
    client = client_for(make_key("orders:read", rate_limit="3/min"))
    assert client.get("/api/v1/orders")["RateLimit-Remaining"] == "2"  # the key is now cached
    for _ in range(4):
        assert client.get(READ).status_code == 403  # locations: the inventory scope
    answers = [client.get("/api/v1/orders") for _ in range(3)]
    assert [a["RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert [a.status_code for a in answers] == [200, 200, 429]
