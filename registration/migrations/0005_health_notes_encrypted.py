"""Children's health notes encrypted at rest, in the history table too.

The existing notes are encrypted first, while the columns are still plain text in the
migration's state (so they are read and written as they are stored), then the fields
become ``EncryptedTextField``. Reversing decrypts them again.
"""

from django.db import migrations

import config.encryption
from config.encryption import UndecryptableValue, decrypt_text, encrypt_text

HEALTH_NOTES = ("allergies", "medications", "conditions")
MODELS = ("StudentHealth", "HistoricalStudentHealth")
BATCH = 500


def _encrypted(value):
    try:
        decrypt_text(value)
    except UndecryptableValue:
        return encrypt_text(value)
    return value  # encrypted already


def _decrypted(value):
    try:
        return decrypt_text(value)
    except UndecryptableValue:
        return value  # in clear already


def _convert(apps, convert):
    for model_name in MODELS:
        model = apps.get_model("registration", model_name)
        manager = model._default_manager
        pk = model._meta.pk.attname
        last = None
        while True:
            rows = manager.order_by(pk).only(pk, *HEALTH_NOTES)
            if last is not None:
                rows = rows.filter(**{f"{pk}__gt": last})
            batch = list(rows[:BATCH])
            if not batch:
                break
            for row in batch:
                for name in HEALTH_NOTES:
                    value = getattr(row, name)
                    if value is not None:
                        setattr(row, name, convert(value))
            manager.bulk_update(batch, HEALTH_NOTES)
            last = getattr(batch[-1], pk)


def encrypt_notes(apps, schema_editor):
    _convert(apps, _encrypted)


def decrypt_notes(apps, schema_editor):
    _convert(apps, _decrypted)


class Migration(migrations.Migration):
    dependencies = [
        ("registration", "0004_meal_eligibility"),
    ]

    operations = [
        migrations.RunPython(encrypt_notes, decrypt_notes),
        migrations.AlterField(
            model_name="historicalstudenthealth",
            name="allergies",
            field=config.encryption.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="historicalstudenthealth",
            name="conditions",
            field=config.encryption.EncryptedTextField(
                blank=True, verbose_name="medical conditions"
            ),
        ),
        migrations.AlterField(
            model_name="historicalstudenthealth",
            name="medications",
            field=config.encryption.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="studenthealth",
            name="allergies",
            field=config.encryption.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="studenthealth",
            name="conditions",
            field=config.encryption.EncryptedTextField(
                blank=True, verbose_name="medical conditions"
            ),
        ),
        migrations.AlterField(
            model_name="studenthealth",
            name="medications",
            field=config.encryption.EncryptedTextField(blank=True),
        ),
    ]
