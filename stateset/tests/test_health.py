import pytest

pytestmark = pytest.mark.django_db


def test_liveness_touches_nothing(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readiness_reports_each_dependency_with_latency(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    components = response.json()["components"]
    assert set(components) == {"database", "redis", "broker"}
    assert components["database"]["status"] == "ok"
    assert components["database"]["latency_ms"] >= 0


def test_readiness_is_503_when_the_database_is_down(client, monkeypatch):
    from stateset import health

    def down():
        raise ConnectionError("connection refused")

    monkeypatch.setattr(health, "_database", down)
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["components"]["database"]["status"] == "down"


def test_compatibility_endpoints_use_the_envelope(client):
    body = client.get("/api/v1/health").json()
    assert body["success"] is True and body["data"]["status"] == "ok"
    status = client.get("/api/v1/status").json()
    assert status["data"]["components"]["database"]["status"] == "ok"


def test_schema_and_docs_are_served_offline(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "cdn.jsdelivr" not in html
    assert "/static/drf_spectacular_sidecar/" in html


def test_large_responses_are_compressed(client):
    import gzip

    import brotli

    client.get("/api/v1/health")
    plain = client.get("/metrics").content
    assert len(plain) > 1024
    brotli_response = client.get("/metrics", HTTP_ACCEPT_ENCODING="gzip, br")
    assert brotli_response["Content-Encoding"] == "br"
    assert brotli.decompress(brotli_response.content).startswith(b"# HELP")
    gzip_response = client.get("/metrics", HTTP_ACCEPT_ENCODING="gzip")
    assert gzip_response["Content-Encoding"] == "gzip"
    assert gzip.decompress(gzip_response.content).startswith(b"# HELP")
    assert "Accept-Encoding" in gzip_response["Vary"]
    small = client.get("/health", HTTP_ACCEPT_ENCODING="gzip, br")
    assert "Content-Encoding" not in small


def test_metrics_expose_the_guides_series(client):
    client.get("/api/v1/health")
    text = client.get("/metrics").content.decode()
    assert 'http_requests_total{method="GET",route="/api/v1/health",status="200"}' in text
    assert "http_request_duration_seconds_bucket" in text
    body = client.get("/metrics/json").json()
    assert "http_requests" in body["metrics"]


def test_static_assets_are_served(client, settings, tmp_path):
    """Under gunicorn nothing else serves /static/: whitenoise does (from the finders in tests)."""
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    response = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert response.status_code == 200
    assert client.get("/static/admin/css/base.css").status_code == 200


def test_readiness_names_failures_generically_never_the_raw_exception(client, monkeypatch):
    from django.db import OperationalError

    from stateset import health

    def database():
        raise OperationalError(
            'connection to server at "10.0.3.7", port 5432 failed: FATAL: password '
                               'authentication failed for user "stateset_admin"')

    def redis():
        raise TimeoutError("Timeout reading from redis-primary.internal:6379")

    monkeypatch.setattr(health, "_database", database)
    monkeypatch.setattr(health, "_redis", redis)
    for path in ("/health/ready", "/api/v1/status"):
        response = client.get(path)
        assert response.status_code == 503
        text = response.content.decode()
        for secret in ("10.0.3.7", "password", "stateset_admin", "redis-primary", "6379", "FATAL"):
            assert secret not in text, (path, secret)
    components = client.get("/health/ready").json()["components"]
    assert components["database"] == {"status": "down", "error": "unreachable", "required": True,
                                      "latency_ms": components["database"]["latency_ms"]}
    assert components["redis"]["error"] == "timeout"
