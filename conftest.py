"""Shared fixtures. Tests run on PostgreSQL only (DATABASE_URL, or the embedded server that
`make test` starts) and on Redis when REDIS_URL is set."""

import os

os.environ.setdefault("STATESET_ENV", "test")

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _locks_in_global_order():
    """Every test checks the lock order of every path it runs: a row lock taken out of the global
    order of ``stateset/locking.py`` raises LockOrderViolation in the service that took it."""
    from stateset.locking import recording

    with recording(strict=True):
        yield


@pytest.fixture(autouse=True)
def _clean_cache():
    from stateset.api.auth import auth_failures
    from stateset.breaker import broker_breaker, redis_breaker
    from stateset.keys import key_cache
    from stateset.pagination import estimates
    from webhooks.services import subscriptions

    # Process-local caches: a test must not see what an earlier one left (their clears run on
    # commit, which a test's own transaction never reaches).
    key_cache.clear()
    estimates.clear()
    subscriptions.clear()
    auth_failures.clear()
    redis_breaker.reset()
    broker_breaker.reset()
    _clear()
    yield
    _clear()


def _clear():
    from stateset.cache import tally

    tally.reset()
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()


@pytest.fixture
def make_key(db):
    """make_key("orders:read", "orders:write") → raw key string."""
    from stateset import services

    def make(*scopes: str, **kwargs) -> str:
        _, raw = services.api_key_create(name=kwargs.pop("name", "test"),
                                         scopes=list(scopes) or ["*"], **kwargs)
        return raw

    return make


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def api(make_key):
    """An API client holding a key with every scope."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=make_key("*"))
    return client


@pytest.fixture
def client_with(make_key):
    """client_with("orders:read") → an API client whose key has exactly those scopes."""

    def build(*scopes: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=make_key(*scopes))
        return client

    return build
