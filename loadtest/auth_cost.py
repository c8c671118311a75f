"""What authenticating an API key costs per request, by how the principal cache is kept
(``stateset.keys``; docs/decisions.md "API keys"):

    python -m loadtest.auth_cost [--calls 20000] [--requests 2000]

- ``local``: the process cache alone (a dict hit; what the 10-second TTL cache cost before, and
  what no longer suffices: a revoked key lived on for up to 10 s in other workers);
- ``redis``: the cache checked against the generation token in Redis (one GET per request: the
  shipped behaviour with REDIS_URL set);
- ``off``: no cache, the key read from PostgreSQL on every request (the behaviour without Redis).

Each is timed on ``principal_for_key`` alone and on a whole authenticated ``GET /api/v1/locations``
through Django's handler and middleware (the test client; no network, one thread); the 10th
percentile is printed next to the median because on a shared machine the median measures the
neighbours as much as the code. Needs the
database of DATABASE_URL migrated and, for ``redis``, REDIS_URL. It creates one key and revokes it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from stateset import services
    from stateset.keys import key_cache, principal_for_key

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    api_key, raw = services.api_key_create(
        name="auth-cost", scopes=["*"], created_by="command:auth_cost"
    )
    modes = ["local", "off"] + (["redis"] if settings.CACHE_REDIS_URL else [])
    try:
        print(
            f"{'mode':<6} {'principal_for_key µs (p10 / median)':>36} "
            f"{'GET /locations µs (p10 / median)':>34}"
        )
        for mode in modes:
            settings.API_KEY_CACHE = mode
            key_cache.clear()
            principal_for_key(raw)
            calls = []
            for _ in range(args.calls):
                t = time.perf_counter()
                principal_for_key(raw)
                calls.append((time.perf_counter() - t) * 1e6)
            client = Client(HTTP_X_API_KEY=raw)
            client.get("/api/v1/locations")
            samples = []
            for _ in range(args.requests):
                t = time.perf_counter()
                client.get("/api/v1/locations")
                samples.append((time.perf_counter() - t) * 1e6)
            print(
                f"{mode:<6} {_p10(calls):>26.1f} / {statistics.median(calls):>7.1f} "
                f"{_p10(samples):>24.0f} / {statistics.median(samples):>7.0f}"
            )
    finally:
        services.api_key_revoke(api_key_id=api_key.pk)


def _p10(samples: list[float]) -> float:
    return sorted(samples)[len(samples) // 10]


if __name__ == "__main__":
    main()
