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


@pytest.mark.django_db(transaction=True)
def test_metrics_add_up_across_gunicorn_workers(tmp_path):
    from django.db import connection

    port = free_port()
    s = connection.settings_dict
    host = s["HOST"] or "localhost"
    database_url = (f"postgresql://{s['USER']}@/{s['NAME']}?host={host}" if host.startswith("/")
                    else f"postgresql://{s['USER']}@{host}:{s['PORT'] or 5432}/{s['NAME']}")
    env = dict(os.environ, DATABASE_URL=database_url, WEB_CONCURRENCY="3", GUNICORN_THREADS="1",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path), STATESET_ENV="test")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "stateset.wsgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/health")
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.3)
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
