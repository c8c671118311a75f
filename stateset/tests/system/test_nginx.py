"""The shipped nginx file (deploy/nginx/) with Debian's nginx: ``nginx -t``, then two API instances
behind it, reached over TLS and HTTP/2, with /metrics* and /health/ready only for the operators'
network (SPEC §1, §10)."""

from __future__ import annotations

import re
import urllib.request

import pytest
from django.db import connection

from stateset.tests.system.servers import (
    DEPLOY,
    Nginx,
    app_env,
    curl,
    database_url,
    free_port,
    start_gunicorn,
    stop,
)

pytestmark = pytest.mark.skipif(bool(Nginx.why_not()), reason=Nginx.why_not() or "nginx present")


def test_the_shipped_nginx_configuration_passes_nginx_t():
    nginx = Nginx([free_port(), free_port()])
    try:
        result = nginx.test_config()
    finally:
        nginx.remove()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_the_shipped_upstream_is_the_guides():
    upstream = (DEPLOY / "nginx" / "stateset-upstream.conf").read_text()
    assert "least_conn;" in upstream and "keepalive 32;" in upstream
    assert re.findall(r"server (api\d):8000 max_fails=3 fail_timeout=30s;", upstream) == ["api1",
                                                                                          "api2",
                                                                                          "api3",
                                                                                          "api4"]


@pytest.mark.django_db(transaction=True)
def test_two_instances_behind_nginx_over_tls_and_http2():
    env = app_env(database_url(connection.settings_dict))
    ports = [free_port(), free_port()]
    instances = [start_gunicorn(env, port, workers=1) for port in ports]
    nginx = Nginx(ports)
    try:
        nginx.start()
        https = f"https://127.0.0.1:{nginx.https_port}"
        assert curl(f"{https}/health", "--http2") == ("2", "200")
        assert curl(f"http://127.0.0.1:{nginx.http_port}/api/v1/health") == ("1.1", "301")
        for _ in range(40):
            assert curl(f"{https}/api/v1/health", "--http2") == ("2", "200")
        # Both instances served some of them (least_conn spreads sequential requests evenly).
        served = [_count(port) for port in ports]
        assert sum(served) == 40 and min(served) >= 10, served
        # Outside the operators' network (the shipped list: 10.0.0.0/8), the detail is refused.
        for path in ("/metrics", "/metrics/json", "/health/ready"):
            assert curl(f"{https}{path}", "--http2") == ("2", "403"), path
    finally:
        nginx.remove()
    operators = Nginx(ports, operators="allow 127.0.0.1;\ndeny all;\n")
    try:
        operators.start()
        https = f"https://127.0.0.1:{operators.https_port}"
        for path in ("/metrics", "/metrics/json", "/health/ready"):
            assert curl(f"{https}{path}", "--http2") == ("2", "200"), path
    finally:
        operators.remove()
        for instance in instances:
            stop(instance)


def _count(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.findall(
        r'http_requests_total\{method="GET",route="/api/v1/health",status="200"\} (\S+)', text)
    return int(float(found[0])) if found else 0


def _answer(url: str, *args: str) -> tuple[str, str, bytes]:
    """(status, content type, body) of a request through nginx, with curl."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile() as body:
        out = subprocess.run(["curl", "-sk", "-o", body.name, "-w", "%{http_code} %{content_type}",
                              *args, url], capture_output=True, text=True, timeout=60)
        status, _, content_type = out.stdout.partition(" ")
        return status, content_type, body.read()


@pytest.mark.django_db(transaction=True)
def test_nginx_refuses_in_the_api_envelope_and_lets_imports_through(tmp_path, make_key):
    import orjson

    key = make_key("*")
    env = app_env(database_url(connection.settings_dict))
    port = free_port()
    instance = start_gunicorn(env, port, workers=1)
    nginx = Nginx([port])
    big = tmp_path / "big.json"
    big.write_bytes(b'{"name": "' + b"x" * (3 * 1024 * 1024) + b'"}')
    sheet = tmp_path / "products.csv"
    sheet.write_bytes(b"sku,name,price\n" + b"".join(
        b"NGX-%06d,Imported through nginx %06d with a long enough name,1.00\n" % (n, n)
        for n in range(30_000)))  # about 2 MiB: past the API's general limit, under the imports'
    try:
        nginx.start()
        https = f"https://127.0.0.1:{nginx.https_port}"
        auth = ("-H", f"X-API-Key: {key}")
        status, kind, body = _answer(f"{https}/api/v1/customers", *auth, "-H",
                                     "Content-Type: application/json", "--data-binary", f"@{big}")
        assert (status, kind) == ("413", "application/json"), body[:300]
        assert orjson.loads(body)["error"]["code"] == "payload_too_large"
        # HTTP/1.1: over HTTP/2 nginx refuses oversized headers in the framing (a reset stream).
        status, kind, body = _answer(f"{https}/api/v1/health", "--http1.1",
                                     "-H", "X-Big: " + "y" * 20_000)
        assert (status, kind) == ("431", "application/json"), body[:300]
        assert orjson.loads(body)["error"]["code"] == "headers_too_large"
        assert sheet.stat().st_size > 2 * 1024 * 1024
        status, kind, body = _answer(f"{https}/api/v1/imports?kind=products&dry_run=true", *auth,
                                     "-H", "Content-Type: text/csv", "--data-binary", f"@{sheet}")
        assert status == "202", body[:300]
    finally:
        nginx.remove()
        stop(instance)
