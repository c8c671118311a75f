"""Answers stored before secrets were redacted (SPEC §4.7): the secret of a stored ``POST /webhooks``
answer becomes null, as every newly stored one is."""

from django.db import migrations

REDACT = """
UPDATE stateset_idempotencyrecord
   SET response_body = jsonb_set(response_body, '{secret}', 'null'::jsonb)
 WHERE jsonb_typeof(response_body) = 'object' AND response_body ? 'secret'
"""


class Migration(migrations.Migration):
    dependencies = [("stateset", "0002_apikey_keyed_hashes_and_rotation")]

    operations = [migrations.RunSQL(REDACT, reverse_sql=migrations.RunSQL.noop)]
