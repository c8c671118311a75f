"""API keys: keyed (HMAC) hashes, rotation with a grace period, who created a key.

Every existing row was hashed with plain SHA-256, and a hash cannot be re-keyed without the raw
secret, so the rows are marked ``sha256`` here (the column is added with that value, then its
default becomes ``hmac-sha256`` for new rows). ``stateset.keys.lookup`` accepts both schemes and
re-hashes a legacy row the first time its secret is used (docs/decisions.md)."""

from django.db import migrations, models

SCHEMES = [("hmac-sha256", "HMAC-SHA256 (peppered)"), ("sha256", "SHA-256 (legacy)")]


class Migration(migrations.Migration):

    dependencies = [
        ("stateset", "0001_initial"),
    ]

    operations = [
        # Existing keys: legacy SHA-256.
        migrations.AddField(
            model_name="apikey",
            name="hash_scheme",
            field=models.CharField(choices=SCHEMES, default="sha256", editable=False, max_length=16),
        ),
        # New keys: HMAC-SHA256 with the server pepper.
        migrations.AlterField(
            model_name="apikey",
            name="hash_scheme",
            field=models.CharField(choices=SCHEMES, default="hmac-sha256", editable=False, max_length=16),
        ),
        migrations.AddField(
            model_name="apikey",
            name="previous_key_hash",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="apikey",
            name="previous_hash_scheme",
            field=models.CharField(blank=True, choices=SCHEMES, default="", editable=False, max_length=16),
        ),
        migrations.AddField(
            model_name="apikey",
            name="previous_expires_at",
            field=models.DateTimeField(blank=True, editable=False, null=True,
                                       help_text="The secret before the last rotation works until then."),
        ),
        migrations.AddField(
            model_name="apikey",
            name="rotated_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="apikey",
            name="created_by",
            field=models.CharField(blank=True, default="", editable=False, max_length=100,
                                   help_text="Who created it: an API key, a staff user or a command."),
        ),
        migrations.AddConstraint(
            model_name="apikey",
            constraint=models.CheckConstraint(condition=models.Q(("hash_scheme__in", ("hmac-sha256", "sha256"))),
                                              name="apikey_hash_scheme_valid"),
        ),
        migrations.AddConstraint(
            model_name="apikey",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("previous_expires_at__isnull", True), ("previous_hash_scheme", ""),
                             ("previous_key_hash__isnull", True)),
                    models.Q(("previous_expires_at__isnull", False),
                             ("previous_hash_scheme__in", ("hmac-sha256", "sha256")),
                             ("previous_key_hash__isnull", False)),
                    _connector="OR",
                ),
                name="apikey_previous_secret_complete",
            ),
        ),
    ]
