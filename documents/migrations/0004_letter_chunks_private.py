"""Chunks of activation letters in the private storage: until they are joined they hold
activation codes in clear, and ``MEDIA_ROOT`` may be served by a web server.

Chunks rendered but not yet joined have their files moved from ``MEDIA_ROOT`` to
``PRIVATE_MEDIA_ROOT`` (and back when reversed).
"""

from django.core.files.storage import default_storage
from django.db import migrations, models

import config.storage


def _move(apps, source, target):
    LetterChunk = apps.get_model("documents", "LetterChunk")
    for pk, name in LetterChunk.objects.exclude(pdf="").values_list("pk", "pdf").iterator():
        if not source.exists(name):
            continue
        with source.open(name, "rb") as handle:
            saved = target.save(name, handle)  # another name if the target has one
        if saved != name:
            LetterChunk.objects.filter(pk=pk).update(pdf=saved)
        source.delete(name)


def to_private(apps, schema_editor):
    _move(apps, default_storage, config.storage.private_storage_get())


def to_media(apps, schema_editor):
    _move(apps, config.storage.private_storage_get(), default_storage)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0003_receipts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="letterchunk",
            name="pdf",
            field=models.FileField(
                blank=True, storage=config.storage.private_storage_get, upload_to="letter-chunks/"
            ),
        ),
        migrations.RunPython(to_private, to_media),
    ]
