"""Per-key rate limits (SPEC §3): 429 with Retry-After and RateLimit-* headers."""

import pytest

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
