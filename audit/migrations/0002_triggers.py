"""The audit's triggers, installed from the code's declarations (``audit.triggers``): forward
after the event tables exist, backward before they and the audited columns go."""

from django.db import migrations


def forward(apps, schema_editor):
    from audit import triggers

    triggers.install(schema_editor.connection.alias, best_effort=True)


def backward(apps, schema_editor):
    from audit import triggers

    triggers.uninstall(schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
