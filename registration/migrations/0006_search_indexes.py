"""Indexes for the staff guardian search on PostgreSQL: trigram indexes on the
upper-cased names (Django's ``icontains`` is ``UPPER(col::text) LIKE UPPER(%s)``) and
a plain one on the upper-cased email (``iexact``). A million-student district has
two million guardians; without them every search reads all of them.

``pg_trgm`` ships with PostgreSQL and is a trusted extension: the database's owner
may create it. SQLite, for small districts, has no such indexes; the migration does
nothing there.
"""

from django.db import migrations

INDEXES = [
    (
        "registration_guardian_given_name_trgm",
        'registration_guardian USING gin (UPPER("given_name"::text) gin_trgm_ops)',
    ),
    (
        "registration_guardian_family_name_trgm",
        'registration_guardian USING gin (UPPER("family_name"::text) gin_trgm_ops)',
    ),
    (
        "registration_contactpoint_email_upper",
        'registration_contactpoint (UPPER("email"::text))',
    ),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _definition in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("registration", "0005_health_notes_encrypted")]

    operations = [migrations.RunPython(create, drop)]
