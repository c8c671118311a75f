import pytest

from inventory import services
from inventory.tests.factories import LocationFactory, ProductFactory


@pytest.fixture
def product(db):
    return ProductFactory()


@pytest.fixture
def main(db):
    return LocationFactory(code="MAIN", priority=0)


@pytest.fixture
def east(db):
    return LocationFactory(code="EAST", priority=10)


@pytest.fixture
def events(monkeypatch):
    """Capture the domain events the services publish (instead of the platform's outbox)."""
    published: list[tuple[str, dict]] = []
    monkeypatch.setattr(services, "_publisher", [lambda *, event_type, payload: published.append((event_type, payload))])
    return published
