"""The wizard's drafts and the signed submissions encrypted at rest: a child's step and
the content a guardian signed hold the child's health notes.

The columns become text first (the JSON as it is stored), then each value is
encrypted in batches, read and written as stored, bypassing the field. Reversing
decrypts them again before the columns go back to JSON; a value no key of
``FIELD_ENCRYPTION_KEYS`` decrypts stops the reversal rather than be lost.
"""

import json

from django.db import migrations
from django.db.models import ExpressionWrapper, F, TextField, Value

import config.encryption
from config.encryption import decrypt_text, encrypt_text

COLUMNS = {"RegistrationStep": ("data", "answers"), "Submission": ("content",)}
BATCH = 500


def _is_json(stored):
    try:
        json.loads(stored)
    except ValueError:
        return False  # a Fernet token is never JSON
    return True


def _encrypted(stored):
    return encrypt_text(stored) if _is_json(stored) else None  # None: encrypted already


def _decrypted(stored):
    return None if _is_json(stored) else decrypt_text(stored)  # None: in clear already


def _convert(apps, convert):
    for model_name, columns in COLUMNS.items():
        model = apps.get_model("workflow", model_name)
        manager = model._default_manager
        raw = {f"stored_{c}": ExpressionWrapper(F(c), output_field=TextField()) for c in columns}
        last = 0
        while True:
            batch = list(
                manager.filter(pk__gt=last)
                .order_by("pk")
                .annotate(**raw)
                .values_list("pk", *raw)[:BATCH]
            )
            if not batch:
                break
            changed = []
            for pk, *stored in batch:
                converted = [convert(value) if value is not None else None for value in stored]
                if any(value is not None for value in converted):
                    row = model(pk=pk)
                    for column, old, new in zip(columns, stored, converted, strict=True):
                        # Written as stored: a Value of plain text is not encrypted again.
                        value = new if new is not None else old
                        setattr(row, column, Value(value, output_field=TextField()))
                    changed.append(row)
            if changed:
                manager.bulk_update(changed, columns)
            last = batch[-1][0]


def encrypt_answers(apps, schema_editor):
    _convert(apps, _encrypted)


def decrypt_answers(apps, schema_editor):
    _convert(apps, _decrypted)


class Migration(migrations.Migration):
    dependencies = [
        ("workflow", "0007_acknowledgement_chinese"),
    ]

    operations = [
        migrations.AlterField(
            model_name="registrationstep",
            name="answers",
            field=config.encryption.EncryptedJSONField(help_text="The cleaned answers."),
        ),
        migrations.AlterField(
            model_name="registrationstep",
            name="data",
            field=config.encryption.EncryptedJSONField(
                help_text="The submitted form fields, as lists of strings."
            ),
        ),
        migrations.AlterField(
            model_name="submission",
            name="content",
            field=config.encryption.EncryptedJSONField(
                help_text="Everything the guardian reviewed and signed."
            ),
        ),
        migrations.RunPython(encrypt_answers, decrypt_answers),
    ]
