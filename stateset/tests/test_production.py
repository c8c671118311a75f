"""SPEC §10: production refuses a default, short or known SECRET_KEY at start-up, and
``manage.py check --deploy`` is clean with STATESET_ENV=production behind the proxy."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from stateset.config import secret_key_problem

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = secrets.token_urlsafe(64)


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STATESET__")}
    environ.update(STATESET_ENV="production", ALLOWED_HOSTS="api.example.com",
                   DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://x@127.0.0.1/x"), **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_in_production():
    result = manage("check", "--deploy", SECRET_KEY=GOOD_KEY)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNING" not in output and "security.W" not in output


def test_production_refuses_the_compose_files_default_key_at_start_up():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "change-me-in-production" not in compose  # no default to fall back on
    result = manage("check", SECRET_KEY="change-me-in-production")
    assert result.returncode != 0
    assert "app.secret_key" in result.stderr and "known default" in result.stderr


@pytest.mark.parametrize("key", ["", "change-me-in-production", "CHANGEME", "build",
                                 "django-insecure-" + "x1y2z3" * 10, "short-but-random-8f3k2",
                                 "a" * 60, "abcd" * 20])
def test_weak_keys_are_refused(key):
    assert secret_key_problem(key)


def test_a_long_random_key_is_accepted():
    assert secret_key_problem(GOOD_KEY) == ""


def production_security_settings() -> dict:
    code = ("import django, json; django.setup(); from django.conf import settings as s; "
            "print(json.dumps({k: getattr(s, k) for k in ('SECURE_PROXY_SSL_HEADER', "
            "'SECURE_SSL_REDIRECT', "
            "'SECURE_REDIRECT_EXEMPT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', "
            "'SECURE_HSTS_PRELOAD', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE')}))")
    environ = dict(os.environ, STATESET_ENV="production", SECRET_KEY=GOOD_KEY,
                   DJANGO_SETTINGS_MODULE="stateset.settings",
                   DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://x@127.0.0.1/x"))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


@pytest.mark.django_db
def test_behind_the_proxy_http_is_redirected_except_probes_and_the_scrape(client):
    with override_settings(**production_security_settings()):
        for path in ("/health", "/health/ready", "/metrics"):
            assert client.get(path).status_code in (200, 503), path  # never a redirect
        plain = client.get("/api/v1/health", HTTP_X_FORWARDED_PROTO="http")
        assert plain.status_code == 301 and plain["Location"].startswith("https://")
        tls = client.get("/api/v1/health", HTTP_X_FORWARDED_PROTO="https")
        assert tls.status_code == 200
        assert "max-age=31536000" in tls["Strict-Transport-Security"]
