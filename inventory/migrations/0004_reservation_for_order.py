"""``Reservation.for_order``: the reservations the orders app holds for its orders, which a release
through the API or the admin may not take away (the order would be stranded). Existing ones are
marked from what only the orders app writes: ``reference_type "order"`` without an expiry. Adding a
column with a constant default is a catalogue change in PostgreSQL 11+ (no table rewrite)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0003_backorders"),
    ]

    operations = [
        migrations.AddField(
            model_name="reservation",
            name="for_order",
            field=models.BooleanField(
                default=False,
                help_text="Held for an order (reference_id) by the orders app: it goes only as the "
                          "order ships, is edited or is cancelled, never by a release."),
        ),
        migrations.RunSQL(
            "UPDATE inventory_reservation SET for_order = true "
            "WHERE reference_type = 'order' AND expires_at IS NULL AND status = 'active'",
            migrations.RunSQL.noop, elidable=True),
    ]
