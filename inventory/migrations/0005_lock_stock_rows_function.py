"""``inventory_lock_stock_rows``: an order's stock scan in one round trip with the shared
PRODUCT_STOCK lock of the products it must see every row of (``inventory.locks.lock_stock_rows``,
``every_row_of``).

The advisory lock has to be taken by a statement before the scan's: a statement's snapshot is taken
when it starts, so a scan that waited for the lock inside itself would still miss the row whose
creation it waited for. A VOLATILE function takes a fresh snapshot for each query it runs, so its
second query sees what committed while its first one waited — two statements, one round trip."""

from django.db import migrations

CREATE = """
CREATE FUNCTION inventory_lock_stock_rows(sellable_of uuid[], every_row_of uuid[], hold bigint[])
RETURNS TABLE (id uuid, product_id uuid, location_id uuid, sku varchar, on_hand bigint,
               reserved bigint, available bigint, sellable bigint, version integer,
               allow_backorder boolean, location_priority integer, location_code varchar)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock_shared(keys.key)
    FROM unnest(hold) WITH ORDINALITY AS keys(key, n) ORDER BY keys.n;
    RETURN QUERY
    SELECT i.id, i.product_id, i.location_id, i.sku, i.on_hand, i.reserved, i.available,
           i.sellable, i.version, i.allow_backorder, l.priority, l.code
    FROM inventory_inventoryitem i JOIN inventory_location l ON l.id = i.location_id
    WHERE l.is_active
      AND (i.product_id = ANY(sellable_of) AND i.sellable > 0 OR i.product_id = ANY(every_row_of))
    ORDER BY i.id
    FOR UPDATE OF i;
END
$$;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0004_reservation_for_order"),
    ]

    operations = [
        migrations.RunSQL(
            CREATE,
            "DROP FUNCTION inventory_lock_stock_rows(uuid[], uuid[], bigint[])"),
    ]
