"""The back office's staff groups (SPEC §5): Support, Warehouse, Finance, Read-only, with exactly
the permissions of ``stateset.roles.ROLES``. Idempotent; reversing it removes the groups.

It runs after every app's migrations so that the permissions it creates carry their models'
verbose names; any content type or permission still missing (a custom permission whose model's
migration is not there yet) is created here."""

from django.db import migrations

from stateset.roles import apply_roles, remove_roles


class Migration(migrations.Migration):
    dependencies = [
        ("stateset", "0003_redact_stored_secrets"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("catalog", "0004_backorders"),
        ("customers", "0003_address_version"),
        ("inventory", "0003_backorders"),
        ("orders", "0003_backorders"),
        ("fulfillment", "0001_initial"),
        ("returns", "0002_refund_per_line"),
        ("webhooks", "0001_initial"),
        ("imports", "0001_initial"),
    ]

    operations = [migrations.RunPython(apply_roles, remove_roles)]
