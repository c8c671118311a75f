"""Every failure is a JSON envelope with a stable code (SPEC §3, §10)."""

import pytest

from stateset.models import ApiKey
from stateset.testing import error_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("stateset.tests.urls")]
URL = "/api/v1/_test/things"


def test_malformed_json_is_400(api):
    response = api.post(URL, b'{"name": ', content_type="application/json")
    assert error_of(response, 400)["code"] == "malformed_json"


def test_non_utf8_body_is_400(api):
    response = api.post(URL, b'{"name": "\xff\xfe"}', content_type="application/json")
    assert error_of(response, 400)["code"] == "malformed_json"


def test_non_json_body_is_415(api):
    response = api.post(URL, "name=x", content_type="application/x-www-form-urlencoded")
    assert error_of(response, 415)["code"] == "unsupported_media_type"


def test_oversized_body_is_413_and_writes_nothing(api, settings):
    body = b'{"name": "' + b"x" * (settings.API_MAX_BODY_BYTES + 10) + b'"}'
    response = api.post(URL, body, content_type="application/json")
    assert error_of(response, 413)["code"] == "payload_too_large"
    assert ApiKey.objects.count() == 1  # only the client's own key


def test_validation_error_is_422_with_field_details(api):
    error = error_of(api.post(URL, {"name": "x" * 101}, format="json"), 422)
    assert error["code"] == "validation_error"
    assert "name" in error["details"]
    assert error["message"].startswith("name:")


@pytest.mark.parametrize("payload", [[], "text", 12, None, {"name": ["list"]}, {"name": {"a": 1}}])
def test_wrong_types_are_4xx(api, payload):
    response = api.post(URL, payload, format="json")
    assert 400 <= response.status_code < 500
    error_of(response, response.status_code)


def test_unknown_route_is_json_404(api):
    assert error_of(api.get("/api/v1/nowhere"), 404)["code"] == "not_found"
    assert error_of(api.get("/nowhere/at/all"), 404)["code"] == "not_found"


def test_wrong_method_is_405(api):
    assert error_of(api.delete(URL), 405)["code"] == "method_not_allowed"


def test_unexpected_exception_is_a_json_500_without_a_trace(anon_client):
    response = anon_client.get("/api/v1/_test/boom")
    error = error_of(response, 500)
    assert error["code"] == "internal_error"
    assert "boom" not in response.content.decode() and "Traceback" not in response.content.decode()


def test_request_id_is_echoed_or_generated(api):
    response = api.get("/api/v1/health", HTTP_X_REQUEST_ID="req-123")
    assert response["X-Request-ID"] == "req-123"
    assert response.json()["meta"]["request_id"] == "req-123"
    generated = api.get("/api/v1/health", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert generated != "bad id with spaces" and len(generated) == 32


def test_html_accept_header_still_gets_json_errors(anon_client):
    response = anon_client.get("/api/v1/_test/things", HTTP_ACCEPT="text/html")
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["success"] is False


def test_success_envelope_shape(api):
    body = api.post(URL, {"name": "ok"}, format="json").json()
    assert body["success"] is True and set(body) == {"success", "data", "meta"}


def test_a_float_beyond_64_bits_in_a_json_field_reads_back_as_a_number(api):
    """jsonb keeps 1e20 as the integer 100000000000000000000, which orjson cannot write: the answer
    sends it as the float it was sent as, never a 500 (found by the schemathesis run)."""
    created = api.post("/api/v1/customers", {"email": "big@example.com",
                                             "metadata": {"n": 1e20, "m": [-1.5e300, 7]}},
                       format="json")
    assert created.status_code == 201, created.content
    customer_id = created.json()["data"]["id"]
    read = api.get(f"/api/v1/customers/{customer_id}")
    assert read.status_code == 200, read.content
    assert read.json()["data"]["metadata"] == {"n": 1e20, "m": [-1.5e300, 7]}


@pytest.mark.parametrize("query,accept", [("", "text/html"), ("?format=api", "*/*"),
                                          ("?format=xml", "application/json")])
def test_an_api_client_always_gets_the_json_envelope(api, query, accept):
    response = api.get(f"/api/v1/health{query}", HTTP_ACCEPT=accept)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json()["success"] is True
