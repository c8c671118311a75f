"""SPEC §5: every model of the product is in the back office (on its own page or inline in its
parent's), and every changelist opens."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

PRODUCT_APPS = ("stateset", "catalog", "customers", "inventory", "orders", "fulfillment", "returns",
                "webhooks")


def product_models():
    return [model for label in PRODUCT_APPS for model in apps.get_app_config(label).get_models()]


def test_every_model_is_registered_or_inline():
    inline = {inline.model for model_admin in admin.site._registry.values()
              for inline in model_admin.inlines}
    # Rows that live only inside their parent and are drawn on its page (the order's lines,
    # shipping lines and payments: orders/admin.py, tested in orders/tests/test_admin.py).
    inline |= {model for model_admin in admin.site._registry.values()
               for model in getattr(model_admin, "shown_on_page", ())}
    missing = [model._meta.label for model in product_models()
               if model not in admin.site._registry and model not in inline]
    assert missing == []


@pytest.mark.parametrize("model", [m for m in product_models() if m in admin.site._registry],
                         ids=lambda model: model._meta.label)
def test_every_changelist_opens(admin_client, model):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert admin_client.get(url).status_code == 200
