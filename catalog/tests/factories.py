"""factory_boy factories for the catalog (used by other apps' tests too)."""

from decimal import Decimal

import factory

from catalog.models import Product


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:06d}")
    name = factory.Sequence(lambda n: f"Test product {n}")
    description = "A product made for tests."
    price = Decimal("19.99")
    currency = "USD"
    is_active = True
    attributes = factory.LazyFunction(dict)
