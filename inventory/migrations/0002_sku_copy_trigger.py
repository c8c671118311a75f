"""Inventory rows keep a copy of their product's SKU (lookups without a join, the UPPER(sku) index).
The database keeps the copy in step: a trigger on ``catalog_product`` rewrites the rows' ``sku``
when a product's SKU changes, in the same statement's transaction — whoever changes it (the API, the
admin, an import, a bulk ``UPDATE``). The catalog app thus never reaches into inventory's tables
(STYLE.md: lower apps never import higher ones); see docs/decisions.md."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION inventory_copy_product_sku() RETURNS trigger AS $$
BEGIN
    UPDATE inventory_inventoryitem
       SET sku = NEW.sku, version = version + 1, updated_at = now()
     WHERE product_id = NEW.id AND sku IS DISTINCT FROM NEW.sku;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER inventory_copy_product_sku
AFTER UPDATE OF sku ON catalog_product
FOR EACH ROW WHEN (OLD.sku IS DISTINCT FROM NEW.sku)
EXECUTE FUNCTION inventory_copy_product_sku();
"""

DROP = """
DROP TRIGGER IF EXISTS inventory_copy_product_sku ON catalog_product;
DROP FUNCTION IF EXISTS inventory_copy_product_sku();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0001_initial"),
        ("catalog", "0002_product_validators_and_indexes"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
