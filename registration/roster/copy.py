"""New rows of a roster import written with PostgreSQL's ``COPY``.

A district's first import creates tens of millions of rows (a million students bring
their guardians, households, memberships, classes and a history row for each). Made
as model instances and sent through ``bulk_create`` and simple-history's
``bulk_history_create``, each row costs a model ``__init__``, a phone number parsed
back into an object and formatted again, and an ``INSERT`` built in Python: about
80 % of the import's time. Here the rows go straight from the importer's values to
``COPY ... FROM STDIN``:

- primary keys are drawn from the table's own sequence first (so a guardian saving
  a phone number during the import cannot collide), as one block when the import
  may alter the sequence, and returned in the order of the rows, as ``bulk_create``
  sets them;
- a field the importer gives is written as given when its type needs no conversion
  (text, numbers, booleans, dates, foreign keys, phone numbers already in E.164);
  any other field goes through its own ``get_db_prep_save``, row by row, so an
  encrypted field still gets a fresh token for each row;
- a field it does not give takes its model default, and ``auto_now``/``auto_now_add``
  times take ``now``;
- the history row of each new row (``history_type`` "+") has the same values,
  ``history_date`` ``now`` and the import's change reason. When the new ids are one
  block, the server copies them from the rows just written (``INSERT ... SELECT``);
  otherwise they are sent with a second ``COPY``.

SQLite has no ``COPY``; ``sync_table`` uses ``bulk_create`` there.

Inside ``write_behind()`` (the importer's write), each ``COPY`` is sent by a second
thread on the same connection and transaction while the importer goes on preparing
the next table's rows: the server stores rows and checks foreign keys on one core
while Python works on the other. Before any other query on the connection the
queued ``COPY``s are finished (a barrier on Django's cursor), so the import reads and
writes in exactly the order it did. Primary keys come from a second, autocommit
connection (sequences are outside transactions anyway), which also says whether a
table is still empty, so that a first import never waits to look.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from operator import itemgetter
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, models
from phonenumber_field.modelfields import PhoneNumberField
from psycopg import sql
from psycopg.errors import InsufficientPrivilege

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


def _getter(names: list[str]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """The values of ``names`` from a row, as a sequence (``itemgetter`` of one name
    gives the bare value)."""
    if len(names) == 1:
        (name,) = names
        return lambda row: (row[name],)
    return itemgetter(*names) if names else (lambda row: ())


def _default(field: models.Field[Any, Any], now: datetime.datetime) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    return field.get_default()


logger = logging.getLogger(__name__)

# simple-history's fields of a "+" row, besides the model's own.
_HISTORY_OWN = ("history_date", "history_change_reason", "history_type", "history_user_id")

# The sequence of a table's id column, quoted as SQL names it, and its increment.
_SEQUENCE = (
    "SELECT n.nspname, c.relname, q.seqincrement FROM pg_sequence q "
    "JOIN pg_class c ON c.oid = q.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE q.seqrelid = pg_get_serial_sequence(%s, %s)::regclass"
)
_SEQUENCE_VALUES = (
    "SELECT nextval(pg_get_serial_sequence(%s, %s)::regclass) FROM generate_series(1, %s)"
)

# How long the import waits for a sequence another transaction is using.
SEQUENCE_LOCK_TIMEOUT_MS = 200

# Rows of one COPY statement.
COPY_CHUNK_ROWS = 100_000

# COPYs queued ahead of the one being sent: enough for the importer to finish
# preparing a table of millions and go on checking the next file while the server
# catches up, few enough not to hold a whole table's rows at once.
WRITE_BEHIND_QUEUE = 24


class _WriteBehind:
    """The queue of ``COPY``s of one ``write_behind()`` block."""

    def __init__(self) -> None:
        connection.ensure_connection()
        self.raw = connection.connection  # the transaction's own psycopg connection
        # The second connection only makes things faster: without it (the server's
        # connection limit reached) ids are taken one by one and every table is read.
        self.sequences: psycopg.Connection[Any] | None = None
        try:
            self.sequences = _second_connection()
        except psycopg.Error:
            logger.warning("roster import: no second connection, ids taken one by one")
        self.abandoned = False
        self.sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roster-copy")
        self.pending: list[Future[None]] = []
        self.written: set[str] = set()
        # The second connection sees what the transaction sees only when the block's
        # transaction is the outermost one: nothing uncommitted came before it.
        self.sees_all = len(connection.atomic_blocks) == 1
        self.slots = threading.BoundedSemaphore(WRITE_BEHIND_QUEUE + 1)

    def reserve(self, table: str, column: str, count: int) -> range:
        """``count`` consecutive ids from the sequence of ``table.column``, taken in one
        short transaction of the second connection: ``ALTER SEQUENCE`` blocks every
        other session's ``nextval`` until it commits, so none can take an id in
        between. Asking for millions one ``nextval`` each kept the server busy for half
        a minute of a million-student import.

        Another session whose open transaction took an id holds the sequence until it
        ends, and may itself be waiting for a row the import has written: the lock is
        waited for briefly, then the ids are taken one by one. An empty range means
        "take them one by one"."""
        if self.sequences is None:
            return range(0)
        execute = self.sequences.execute
        try:
            with self.sequences.transaction():
                execute(f"SET LOCAL lock_timeout = '{SEQUENCE_LOCK_TIMEOUT_MS:d}ms'")
                found = execute(_SEQUENCE, [table, column]).fetchone()
                if found is None or found[2] != 1:
                    return range(0)  # an increment of its own: one nextval each
                sequence = sql.Identifier(found[0], found[1])
                alter = sql.SQL("ALTER SEQUENCE {} INCREMENT BY {}")
                nextval = sql.SQL("SELECT nextval({})").format(sql.Literal(sequence.as_string()))
                execute(alter.format(sequence, 1))  # takes the lock
                taken = execute(nextval).fetchone()
                assert taken is not None
                first = int(taken[0])
                if count > 1:
                    execute(alter.format(sequence, count - 1))
                    execute(nextval)
                    execute(alter.format(sequence, 1))
        except InsufficientPrivilege:
            # Only the sequence's owner may alter it: a database user that did not
            # run the migrations takes one nextval each.
            logger.info("roster import: ids of %s taken one by one (not its owner)", table)
            return range(0)
        except psycopg.Error as exc:  # the lock not granted in time, or anything else
            logger.info("roster import: ids of %s taken one by one (%s)", table, exc)
            return range(0)
        return range(first, first + count)

    def is_empty(self, query: str, params: Sequence[Any]) -> bool:
        """Whether ``query`` (a ``SELECT`` of at most one row) finds nothing, asked on
        the second connection; ``False`` when it cannot say."""
        if self.sequences is None:
            return False
        try:
            found = self.sequences.execute(
                sql.SQL("SELECT EXISTS ({})").format(sql.SQL(query)), params
            ).fetchone()
        except psycopg.Error as exc:
            logger.info("roster import: reading the table on its own connection (%s)", exc)
            return False
        return found is not None and not found[0]

    def send(
        self,
        table: str,
        statement: str,
        rows: Iterable[Sequence[Any]] | None = None,
        params: Sequence[Any] = (),
    ) -> None:
        """Queue a ``COPY ... FROM STDIN`` of ``rows``, or (without rows) a statement
        that writes ``table``."""
        self.written.add(table)
        self.slots.acquire()
        self.pending.append(self.sender.submit(self._send, statement, rows, params))

    def _send(
        self, statement: str, rows: Iterable[Sequence[Any]] | None, params: Sequence[Any]
    ) -> None:
        try:
            with self.raw.cursor() as cursor:
                # Foreign keys are checked as the statement ends, here, rather than
                # all at the commit, when nothing else would be running.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                if rows is None:
                    cursor.execute(statement, params)
                else:
                    with cursor.copy(statement) as copy:
                        for row in rows:
                            copy.write_row(row)
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        finally:
            self.slots.release()

    def finish(self) -> None:
        """Wait for every queued COPY; the first one that failed raises here, as
        Django's own database error, and the ones after it are not sent."""
        with connection.wrap_database_errors:
            while self.pending:
                try:
                    self.pending[0].result()
                except BaseException:
                    self.cancel()
                    raise
                self.pending.pop(0)

    def cancel(self) -> None:
        """Drop the queued COPYs not yet sent (the one being sent ends on its own)."""
        for future in self.pending:
            future.cancel()
        self.pending = []

    def close(self, failed: bool) -> None:
        try:
            if failed or self.abandoned:
                self.cancel()
            else:
                self.finish()
        finally:
            self.sender.shutdown(wait=True)
            if self.sequences is not None:
                self.sequences.close()


def _second_connection() -> psycopg.Connection[Any]:
    """An autocommit connection to the same database, beside the import's own."""
    return psycopg.connect(**connection.get_connection_params(), autocommit=True)


class _Current(threading.local):
    queue: _WriteBehind | None = None


# The block running in this thread (imports in two threads have a queue each).
_current = _Current()


@contextlib.contextmanager
def write_behind() -> Iterator[None]:
    """Send the ``COPY``s of ``copy_create`` from a second thread while the block
    goes on (on PostgreSQL, inside a transaction; elsewhere this does nothing)."""
    if not copy_available() or _current.queue is not None or not connection.in_atomic_block:
        yield
        return
    queue = _current.queue = _WriteBehind()

    def barrier(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queue.finish()
        return execute(sql, params, many, context)

    failed = True
    try:
        with connection.execute_wrapper(barrier):
            yield
        failed = False
    finally:
        _current.queue = None
        try:
            queue.close(failed)
        except Exception:
            if failed:
                # The block's own error says more; this one is only logged.
                logger.exception("a queued roster COPY failed as well")
            else:
                raise


def nothing_stored(rows: models.QuerySet[Any]) -> bool:
    """Inside ``write_behind()``: whether ``rows`` (a queryset of one table) is empty,
    known without waiting for the queued ``COPY``s (``False`` when unsure, and
    outside the block). A table this block has not written holds only what others
    committed, which the second connection sees as well (unless the block runs
    inside a larger transaction)."""
    queue = _current.queue
    if queue is None or not queue.sees_all or rows.model._meta.db_table in queue.written:
        return False
    query, params = rows.order_by().values("pk")[:1].query.sql_with_params()
    return queue.is_empty(query, params)


def write_behind_abandon() -> None:
    """The block's writes will be rolled back (a bundle with errors): drop the COPYs
    not yet sent rather than wait for them, and ignore how the last one ends."""
    if _current.queue is not None:
        _current.queue.abandoned = True
        _current.queue.cancel()


def _sequence_values(table: str, column: str, count: int) -> list[int]:
    if _current.queue is not None:
        reserved = _current.queue.reserve(table, column, count)
        if len(reserved) == count:
            return list(reserved)
    with connection.cursor() as cursor:
        cursor.execute(_SEQUENCE_VALUES, [table, column, count])
        return [row[0] for row in cursor.fetchall()]


def _copy(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    quote = connection.ops.quote_name
    statement = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    if _current.queue is not None:
        _current.queue.send(table, statement, rows)
        return
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
    given = set(rows[0])
    # Columns taken as they are from the row come first, read by one itemgetter (most
    # of a roster's columns: per-row Python here was a fifth of a large import).
    plain = [f for f in meta.concrete_fields if f is not pk and f.attname in given and _as_given(f)]
    rest = [f for f in meta.concrete_fields if f is not pk and f not in plain]
    # The others: defaults written as they are (the same in every row), then values
    # converted row by row (given, or an encrypted default: a fresh token each).
    constant = [f for f in rest if f.attname not in given and _as_given(f)]
    computed = [f for f in rest if f not in constant]
    constants = [_default(f, now) for f in constant]
    # (attribute, from the row?, conversion, default)
    plan: list[tuple[str, bool, Callable[[Any], Any], Any]] = [
        (f.attname, f.attname in given, _converter(f), _default(f, now)) for f in computed
    ]
    take = _getter([f.attname for f in plain])

    def values(key: int, row: Mapping[str, Any]) -> list[Any]:
        out = [key, *take(row), *constants]
        for name, from_row, convert, default in plan:
            out.append(convert(row[name] if from_row else default))
        return out

    names = [f.attname for f in (*plain, *constant, *computed)]
    columns = [pk.column, *(f.column for f in (*plain, *constant, *computed))]
    one_block = pks[-1] - pks[0] == len(pks) - 1
    # A COPY per chunk: the server takes the first rows of a table of millions while
    # the next are prepared, and the rows are not all held at once.
    for start in range(0, len(rows), COPY_CHUNK_ROWS):
        end = start + COPY_CHUNK_ROWS
        keys = pks[start:end]
        # Each row as written: its id, then the values of ``names``.
        chunk = zip(keys, rows[start:end], strict=True)
        if plan:
            stored = [values(key, row) for key, row in chunk]
        else:  # most tables: no function call per row
            stored = [[key, *take(row), *constants] for key, row in chunk]
        _copy(meta.db_table, columns, stored)
        if history is not None and not one_block:
            _copy_history(history.model, pk.attname, names, stored, now, change_reason)
    if history is not None and one_block:
        # One statement for the whole block: a range per chunk would be planned on a
        # table without statistics yet, and read whole each time.
        _insert_history(history.model, model, names, (pks[0], pks[-1]), now, change_reason)
    return pks


def _history_columns(
    historical: type[models.Model], pk_name: str, names: list[str]
) -> tuple[list[str], list[str]]:
    """Which written values a history row keeps (the id first, as attribute names), and
    which of simple-history's own fields it has."""
    # The history_id is the table's identity.
    kept = {f.attname for f in historical._meta.concrete_fields if f.attname != "history_id"}
    unknown = kept - {pk_name, *names, *_HISTORY_OWN}
    if unknown:
        raise ValueError(
            f"{historical.__name__}.{', '.join(sorted(unknown))}: neither a field of the "
            "model nor one of simple-history's own, COPY cannot fill it"
        )
    taken = [pk_name, *(name for name in names if name in kept)]
    return taken, [name for name in _HISTORY_OWN if name in kept]


def _history_values(own: list[str], now: datetime.datetime, change_reason: str) -> list[Any]:
    fixed = {
        "history_date": now,
        "history_change_reason": change_reason,
        "history_type": "+",
        "history_user_id": None,
    }
    return [fixed[name] for name in own]


def _insert_history(
    historical: type[models.Model],
    model: type[models.Model],
    names: list[str],
    block: tuple[int, int],
    now: datetime.datetime,
    change_reason: str,
) -> None:
    """The "+" history rows of the rows just written with the ids ``block`` (first,
    last; every id between is one of them), copied by the server from those rows: no
    second formatting and parsing of millions of values."""
    meta = model._meta
    assert meta.pk is not None
    taken, own = _history_columns(historical, meta.pk.attname, names)
    history_column = {f.attname: f.column for f in historical._meta.concrete_fields}
    model_column = {f.attname: f.column for f in meta.concrete_fields}
    statement = sql.SQL(
        "INSERT INTO {history} ({columns}) SELECT {values} FROM {table} "
        "WHERE {pk} BETWEEN %s AND %s ORDER BY {pk}"
    ).format(
        history=sql.Identifier(historical._meta.db_table),
        columns=sql.SQL(", ").join(sql.Identifier(history_column[n]) for n in (*taken, *own)),
        values=sql.SQL(", ").join(
            [*(sql.Identifier(model_column[n]) for n in taken), *(sql.Placeholder() for _ in own)]
        ),
        table=sql.Identifier(meta.db_table),
        pk=sql.Identifier(meta.pk.column),
    )
    params = [*_history_values(own, now, change_reason), *block]
    if _current.queue is not None:
        _current.queue.send(historical._meta.db_table, statement.as_string(), params=params)
        return
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(connection.connection), params)


def _copy_history(
    historical: type[models.Model],
    pk_name: str,
    names: list[str],
    stored: list[list[Any]],
    now: datetime.datetime,
    change_reason: str,
) -> None:
    """One "+" history row per new row, with the values just written (``stored``:
    the id, then the values of ``names``)."""
    taken, own = _history_columns(historical, pk_name, names)
    tail = _history_values(own, now, change_reason)
    history_column = {f.attname: f.column for f in historical._meta.concrete_fields}
    columns = [history_column[name] for name in (*taken, *own)]
    if len(taken) == len(names) + 1:
        rows: Iterable[Sequence[Any]] = (row + tail for row in stored)
    else:
        at = [0, *(1 + names.index(name) for name in taken[1:])]
        rows = ([*(row[i] for i in at), *tail] for row in stored)
    _copy(historical._meta.db_table, columns, rows)
