"""What orders ask of the apps below them: a product that was ordered is deactivated, not
deleted; a dead Redis costs cache hits, never an order."""

import pytest

pytestmark = pytest.mark.django_db


def test_deleting_an_ordered_product_deactivates_it(api, make_order, make_product):
    ordered = make_product()
    make_order(product=ordered)
    response = api.delete(f"/api/v1/products/{ordered.id}")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["deactivated"] is True
    ordered.refresh_from_db()
    assert ordered.is_active is False and ordered.version == 2


def test_with_redis_down_orders_are_taken_and_read(api, customer, make_product, settings):
    """SPEC §7/§10: a dead Redis costs cache hits, never a 5xx."""
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.2,
                    "SOCKET_TIMEOUT": 0.2}}}
    settings.CACHE_ENABLED = True
    settings.API_RATE_LIMIT = "100/min"
    product = make_product(stock=5)
    created = api.post("/api/v1/orders", {"customer_id": str(customer.id),
                                          "items": [{"product_id": str(product.id),
                                                     "quantity": 1}]}, format="json")
    assert created.status_code == 201, created.content
    order_id = created.json()["data"]["id"]
    assert api.get(f"/api/v1/orders/{order_id}").status_code == 200
    assert api.get(f"/api/v1/customers/{customer.id}/orders").json()["data"]["total"] == 1
    assert api.get(f"/api/v1/products/{product.id}").status_code == 200
