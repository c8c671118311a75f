"""The staff groups again (``stateset.roles.apply_roles``, idempotent), now that the dashboard's
daily rollup (``orders.OrderDay``) is a model of the business: every group that views orders views
it."""

from django.db import migrations

from stateset.roles import apply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("stateset", "0004_staff_roles"),
        ("orders", "0005_dashboard_rollup_and_timeline_index"),
    ]

    operations = [migrations.RunPython(apply_roles, migrations.RunPython.noop)]
