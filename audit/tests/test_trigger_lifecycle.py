"""The audit's triggers follow its migrations (``audit.triggers``): rolling back to an earlier audit
migration removes exactly the triggers whose event tables go, keeps the others, and migrating
forward again brings them back."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from audit.models import LocationEvent, ProductEvent
from catalog.models import Product
from inventory.models import Location

pytestmark = pytest.mark.django_db(transaction=True)


def tables() -> set[str]:
    return set(connection.introspection.table_names())


def test_a_rollback_past_0004_keeps_the_older_trails_and_forward_restores_the_new_ones():
    try:
        call_command("migrate", "audit", "0003", verbosity=0)
        assert LocationEvent._meta.db_table not in tables()
        # Its trigger went with its table: a location is written, nowhere to be audited.
        Location.objects.create(code="RB-1", name="rolled back")
        # The trails 0003 had still record.
        product = Product.objects.create(sku="RB-SKU", name="kept", price=Decimal("1.00"),
                                         currency="USD")
        assert ProductEvent.objects.filter(pgh_obj_id=product.id).count() == 1
    finally:
        call_command("migrate", verbosity=0)
    location = Location.objects.create(code="RB-2", name="forward again")
    assert LocationEvent.objects.filter(pgh_obj_id=location.id).count() == 1
