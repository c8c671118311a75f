import pytest

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


class _Outbox:
    """The domain events written to the outbox so far, oldest first, as (type, payload) pairs."""

    def _rows(self) -> list[tuple[str, dict]]:
        from webhooks.models import Event

        return list(Event.objects.order_by("created_at", "id").values_list("type", "payload"))

    def __iter__(self):
        return iter(self._rows())

    def __getitem__(self, index: int) -> tuple[str, dict]:
        return self._rows()[index]


@pytest.fixture
def events(db):
    return _Outbox()
