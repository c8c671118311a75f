"""``make bench`` counts statements per request from the app's request log, per scenario: two
scenarios on one route (``POST /orders`` keyed, the flash sale unkeyed) are counted apart."""

import json

from loadtest import bench


def line(ts, queries, status=201, route="/api/v1/orders"):
    return json.dumps({"ts": ts, "method": "POST", "route": route, "status": status,
                       "db_queries": queries})


def test_each_scenario_counts_only_its_own_windows(tmp_path):
    log = tmp_path / "gunicorn.log"
    log.write_text("\n".join([
        "[2026-12-02 14:00:00] gunicorn booting",
        line("2026-12-02T14:00:10+00:00", 8),
        line("2026-12-02T14:00:11+00:00", 8),
        line("2026-12-02T14:00:12+00:00", 3, route="/api/v1/locations"),
        line("2026-12-02T14:05:10+00:00", 6),
        line("2026-12-02T14:05:11+00:00", 2, status=409),
    ]) + "\n")
    entries = bench.request_log(log)
    start = entries[0][0]
    keyed = bench.query_counts(entries, ("POST", "/api/v1/orders"), [[start - 1, start + 60]])
    flash = bench.query_counts(entries, ("POST", "/api/v1/orders"),
                               [[start + 290, start + 310]])
    assert keyed["distribution"] == {"8": 2} and keyed["typical"] == 8
    assert flash["distribution"] == {"6": 1} and flash["statuses"] == {"201": 1, "409": 1}
    assert bench.query_counts(entries, ("POST", "/api/v1/orders"), [[0, 1]]) is None
