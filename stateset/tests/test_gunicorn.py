"""The production server as configured (gunicorn.conf.py): it serves, and /metrics adds up the
samples of every worker process, not just the one that answers the scrape."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def start_gunicorn(tmp_path, workers: int = 3) -> tuple[subprocess.Popen, str]:
    """gunicorn as configured, on the test database and a free port; returns once it answers."""
    from django.db import connection

    port = free_port()
    s = connection.settings_dict
    host = s["HOST"] or "localhost"
    database_url = (f"postgresql://{s['USER']}@/{s['NAME']}?host={host}" if host.startswith("/")
                    else f"postgresql://{s['USER']}@{host}:{s['PORT'] or 5432}/{s['NAME']}")
    env = dict(os.environ, DATABASE_URL=database_url, WEB_CONCURRENCY=str(workers),
               GUNICORN_THREADS="1", PROMETHEUS_MULTIPROC_DIR=str(tmp_path), STATESET_ENV="test")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "stateset.wsgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            get(f"{base}/health")
            return server, base
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(
                    "gunicorn did not start: "
                    + (server.stderr.read() if server.stderr else b"").decode()[-2000:])
            time.sleep(0.3)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_reaches_the_api_through_gunicorn(tmp_path):
    """Transfer-Encoding: chunked, no Content-Length: gunicorn decodes it, the API reads all of it
    (it was silently read as empty), and one over the body limit is a 413."""
    import http.client

    import orjson
    from django.db import connection

    from stateset import services

    def customer_exists(email: str, **fields: str) -> bool:  # the platform's tests import no app
        with connection.cursor() as cursor:
            cursor.execute("SELECT first_name FROM customers_customer WHERE email = %s", [email])
            row = cursor.fetchone()
        return row is not None and all(row[0] == v for v in fields.values())

    _, raw = services.api_key_create(name="chunked", scopes=["customers:write"])
    server, base = start_gunicorn(tmp_path, workers=1)
    try:
        conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        body = [b'{"email": "chunked@example.com", ', b'"first_name": "Chunk", ',
                b'"last_name": "Ed"}']
        conn.request("POST", "/api/v1/customers", body=iter(body), encode_chunked=True,
                     headers={"Content-Type": "application/json", "X-API-Key": raw})
        response = conn.getresponse()
        answer = response.read()
        assert response.status == 201, answer
        assert orjson.loads(answer)["data"]["email"] == "chunked@example.com"
        assert customer_exists("chunked@example.com", first_name="Chunk")
        huge = [b'{"email": "huge@example.com", "first_name": "', b"x" * (1024 * 1024), b'"}']
        conn.request("POST", "/api/v1/customers", body=iter(huge), encode_chunked=True,
                     headers={"Content-Type": "application/json", "X-API-Key": raw})
        response = conn.getresponse()
        assert response.status == 413, response.read()
        assert not customer_exists("huge@example.com")
        # A 6,000-character query string (over gunicorn's default line limit of 4,094) reaches the
        # API and is answered by it, in JSON, not by gunicorn's plain-text 414.
        conn.close()
        conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        conn.request("GET", "/api/v1/customers?email=" + "a" * 6000, headers={"X-API-Key": raw})
        response = conn.getresponse()
        answer = response.read()
        assert response.getheader("Content-Type", "").startswith("application/json"), answer[:200]
        assert response.status < 500 and orjson.loads(answer)["success"] is False
        conn.close()
    finally:
        server.terminate()
        server.wait(20)


@pytest.mark.django_db(transaction=True)
def test_metrics_add_up_across_gunicorn_workers(tmp_path):
    server, base = start_gunicorn(tmp_path)
    try:
        for _ in range(30):
            assert b'"success":true' in get(f"{base}/api/v1/health")
        text = get(f"{base}/metrics").decode()
        counts = re.findall(
            r'http_requests_total\{method="GET",route="/api/v1/health",status="200"\} (\S+)', text)
        # Each worker writes its own samples file; the scrape sums them, whichever worker answers.
        assert counts and float(counts[0]) == 30.0, counts
    finally:
        server.terminate()
        server.wait(20)
