"""API keys in the back office: created, edited, rotated and revoked through the services, the
secret shown once in a message and stored nowhere; staff grant only what they could use."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.urls import reverse

from stateset import services
from stateset.models import ApiKey
from stateset.testing import client_for

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:stateset_apikey_changelist")
ADD = reverse("admin:stateset_apikey_add")


def form(**fields):
    return {"name": "from admin", "scopes": "orders:read", "rate_limit": "", "expires_at_0": "",
            "expires_at_1": "", **fields}


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def secret_in(text):
    return next(word for word in text.split() if word.startswith("sk_"))


def stored():
    return json.dumps(list(ApiKey.objects.order_by("pk").values()), default=str)


def test_add_shows_the_secret_once_and_stores_only_its_hash(admin_client, admin_user):
    response = admin_client.post(ADD, form(scopes="orders:read,orders:set_prices"), follow=True)
    assert response.status_code == 200
    raw = secret_in(" ".join(messages_of(response)))
    row = ApiKey.objects.get(name="from admin")
    assert row.created_by == f"admin:{admin_user.username}" and row.scopes == ["orders:read",
                                                                               "orders:set_prices"]
    assert raw not in stored()
    assert client_for(raw).get("/api/v1/orders").status_code == 200
    page = admin_client.get(reverse("admin:stateset_apikey_change", args=[row.pk])).content.decode()
    assert raw not in page and row.key_hash not in page


def test_invalid_form_shows_errors_and_writes_nothing(admin_client):
    before = stored()
    response = admin_client.post(ADD, form(scopes="orders:fly", rate_limit="fast"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "scopes" in errors and "rate_limit" in errors
    assert stored() == before


def test_editing_scopes_takes_effect_at_once(admin_client, make_key):
    raw = make_key("orders:read", name="edited")
    row = ApiKey.objects.get(name="edited")
    assert client_for(raw).get("/api/v1/customers").status_code == 403  # cached as orders:read
    response = admin_client.post(reverse("admin:stateset_apikey_change", args=[row.pk]),
                                 form(name="edited", scopes="orders:read,customers:read"))
    assert response.status_code == 302
    assert client_for(raw).get("/api/v1/customers").status_code == 200


def test_rotate_and_revoke_actions(admin_client, make_key):
    raw = make_key("orders:read", name="act")
    row = ApiKey.objects.get(name="act")
    assert client_for(raw).get("/api/v1/orders").status_code == 200
    response = admin_client.post(CHANGELIST, {"action": "rotate_now", "_selected_action": [row.pk]},
                                 follow=True)
    new = secret_in(" ".join(messages_of(response)))
    assert client_for(raw).get("/api/v1/orders").status_code == 401
    assert client_for(new).get("/api/v1/orders").status_code == 200
    assert new not in stored()

    response = admin_client.post(CHANGELIST,
                                 {"action": "rotate_with_grace", "_selected_action": [row.pk]},
                                 follow=True)
    newer = secret_in(" ".join(messages_of(response)))
    assert client_for(new).get("/api/v1/orders").status_code == 200  # the grace period
    admin_client.post(CHANGELIST, {"action": "revoke", "_selected_action": [row.pk]})
    for secret in (new, newer):
        assert client_for(secret).get("/api/v1/orders").status_code == 401
    row.refresh_from_db()
    assert row.revoked_at is not None and row.previous_key_hash is None


def test_keys_are_revoked_never_deleted(admin_client, make_key):
    make_key("orders:read", name="kept")
    row = ApiKey.objects.get(name="kept")
    assert admin_client.get(reverse("admin:stateset_apikey_delete",
                                    args=[row.pk])).status_code == 403
    response = admin_client.get(CHANGELIST)
    assert "delete_selected" not in [name for name,
                                     _ in response.context["action_form"].fields["action"].choices]
    assert ApiKey.objects.filter(pk=row.pk).exists()


def test_staff_grant_only_the_scopes_of_their_session(client):
    staff = User.objects.create_user("keeper", password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="stateset",
                                                         codename__endswith="apikey"))
    client.force_login(staff)
    before = stored()
    response = client.post(ADD, form(scopes="*"), follow=True)
    assert any("Not saved" in m and "lacks *" in m
               for m in messages_of(response)), messages_of(response)
    assert stored() == before
    strong = services.api_key_create(name="strong", scopes=["*"])[0]
    client.post(CHANGELIST, {"action": "revoke", "_selected_action": [strong.pk]})
    strong.refresh_from_db()
    assert strong.revoked_at is None


@pytest.mark.parametrize("rows", [1, 50])
def test_changelist_query_count_is_fixed(admin_client, django_assert_num_queries, rows):
    for i in range(rows):
        services.api_key_create(name=f"k{i}", scopes=["orders:read"])
    with django_assert_num_queries(4):  # session, user, count, page
        response = admin_client.get(CHANGELIST, {"hash_scheme__exact": "hmac-sha256"})
    assert len(response.context["cl"].result_list) == rows
