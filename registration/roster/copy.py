"""New rows of a roster import written with PostgreSQL's ``COPY``.

A district's first import creates tens of millions of rows (a million students bring
their guardians, households, memberships, classes and a history row for each). Made
as model instances and sent through ``bulk_create`` and simple-history's
``bulk_history_create``, each row costs a model ``__init__``, a phone number parsed
back into an object and formatted again, and an ``INSERT`` built in Python: about
80 % of the import's time. Here the rows go straight from the importer's values to
``COPY ... FROM STDIN``:

- primary keys are drawn from the table's own sequence first (``nextval`` for each
  row, so a guardian saving a phone number during the import cannot collide), and
  returned in the order of the rows, as ``bulk_create`` sets them;
- a field the importer gives is written as given when its type needs no conversion
  (text, numbers, booleans, dates, foreign keys, phone numbers already in E.164);
  any other field goes through its own ``get_db_prep_save``, row by row, so an
  encrypted field still gets a fresh token for each row;
- a field it does not give takes its model default, and ``auto_now``/``auto_now_add``
  times take ``now``;
- the history row of each new row (``history_type`` "+") is written the same way,
  with the same values, ``history_date`` ``now`` and the import's change reason.

SQLite has no ``COPY``; ``sync_table`` uses ``bulk_create`` there.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import connection, models
from phonenumber_field.modelfields import PhoneNumberField

# Field types whose Python values psycopg writes exactly as Django would store them.
_AS_GIVEN = (
    models.AutoField,
    models.BigAutoField,
    models.BooleanField,
    models.CharField,  # EmailField and SlugField too
    models.TextField,
    models.IntegerField,  # every integer type
    models.DateField,  # DateTimeField too (aware datetimes)
    models.ForeignKey,  # OneToOneField too: the attname, an integer
)


def copy_available() -> bool:
    return connection.vendor == "postgresql"


def _as_given(field: models.Field[Any, Any]) -> bool:
    """Whether values of ``field`` need no conversion on their way to the database:
    Django's own field types, not a subclass that prepares values its own way
    (encrypted text, phone numbers, JSON)."""
    if isinstance(field, PhoneNumberField) or not isinstance(field, _AS_GIVEN):
        return False
    kind = type(field)
    return all(
        getattr(kind, method).__module__.startswith("django.db.models")
        for method in ("get_db_prep_save", "get_db_prep_value", "get_prep_value")
    )


def _converter(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """How one value of ``field`` becomes what ``COPY`` writes."""
    if (
        isinstance(field, PhoneNumberField)
        and getattr(settings, "PHONENUMBER_DB_FORMAT", "E164") == "E164"
    ):

        def phone(value: Any) -> Any:
            # The importer normalises every number to E.164 already.
            if value is None or value == "" or (isinstance(value, str) and value[:1] == "+"):
                return value
            return field.get_db_prep_save(value, connection)

        return phone
    return lambda value: field.get_db_prep_save(value, connection)


def _default(field: models.Field[Any, Any], now: datetime.datetime) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    return field.get_default()


def _sequence_values(table: str, column: str, count: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
        (sequence,) = cursor.fetchone()
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, count]
        )
        return [row[0] for row in cursor.fetchall()]


def _copy(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    quote = connection.ops.quote_name
    statement = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def copy_create(
    model: type[models.Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    now: datetime.datetime,
    history: Any,
    change_reason: str,
) -> list[int]:
    """Insert ``rows`` (attribute names to values) into ``model``'s table, and their
    history rows when ``history`` is the model's history manager. Returns the new
    primary keys in the order of ``rows``."""
    if not rows:
        return []
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    pks = _sequence_values(meta.db_table, pk.column, len(rows))
    fields = [f for f in meta.concrete_fields if f is not pk]
    given = set(rows[0])
    # (attribute, from the row?, conversion or None when written as is, default)
    plan: list[tuple[str, bool, Callable[[Any], Any] | None, Any]] = []
    for f in fields:
        convert = None if _as_given(f) else _converter(f)
        if f.attname in given:
            plan.append((f.attname, True, convert, None))
        else:
            plan.append((f.attname, False, convert, _default(f, now)))

    def values(row: Mapping[str, Any]) -> list[Any]:
        out = []
        for name, from_row, convert, default in plan:
            value = row[name] if from_row else default
            # An encrypted default still gets its own token in each row.
            out.append(value if convert is None else convert(value))
        return out

    stored = [values(row) for row in rows]
    names = [name for name, *_ in plan]
    _copy(
        meta.db_table,
        [pk.column, *(f.column for f in fields)],
        ([key, *row] for key, row in zip(pks, stored, strict=True)),
    )
    if history is not None:
        _copy_history(history.model, pk.attname, names, pks, stored, now, change_reason)
    return pks


def _copy_history(
    historical: type[models.Model],
    pk_name: str,
    names: list[str],
    pks: list[int],
    stored: list[list[Any]],
    now: datetime.datetime,
    change_reason: str,
) -> None:
    """One "+" history row per new row, with the values just written."""
    position = {name: index for index, name in enumerate(names)}
    fixed = {
        "history_date": now,
        "history_change_reason": change_reason,
        "history_type": "+",
        "history_user_id": None,
    }
    columns: list[str] = []
    template: list[Any] = []  # each history row starts as this, then takes its values
    from_row: list[tuple[int, int]] = []  # (column, index in the written row)
    key_column = -1
    for f in historical._meta.concrete_fields:
        if f.attname == "history_id":
            continue  # the table's identity fills it
        column = len(columns)
        columns.append(f.column)
        template.append(fixed.get(f.attname))
        if f.attname == pk_name:
            key_column = column
        elif f.attname in position:
            from_row.append((column, position[f.attname]))
        elif f.attname not in fixed:
            raise ValueError(
                f"{historical.__name__}.{f.attname} is neither a field of the model nor "
                "one of simple-history's own: COPY cannot fill it"
            )

    def history_row(key: int, row: list[Any]) -> list[Any]:
        out = list(template)
        out[key_column] = key
        for column, index in from_row:
            out[column] = row[index]
        return out

    _copy(
        historical._meta.db_table,
        columns,
        (history_row(key, row) for key, row in zip(pks, stored, strict=True)),
    )
