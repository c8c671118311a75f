"""factory_boy factories for customers and addresses (used by other apps' tests too)."""

import factory

from customers.models import Address, Customer


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = factory.Sequence(lambda n: f"First{n}")
    last_name = factory.Sequence(lambda n: f"Last{n}")
    phone = "+1 555 010 0000"
    metadata = factory.LazyFunction(dict)


class AddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Address

    customer = factory.SubFactory(CustomerFactory)
    kind = Address.Kind.SHIPPING
    name = factory.LazyAttribute(lambda a: f"{a.customer.first_name} {a.customer.last_name}")
    line1 = factory.Sequence(lambda n: f"{n + 1} Main Street")
    city = "Austin"
    region = "TX"
    postal_code = "78701"
    country = "US"
    is_default = False
