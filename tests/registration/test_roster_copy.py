"""On PostgreSQL a roster import writes its new rows with COPY: the same rows, and the
same history rows, as ``bulk_create`` and simple-history's ``bulk_history_create``
write on other databases."""

from __future__ import annotations

import itertools
import threading
from typing import Any
from unittest import mock

import psycopg
import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from registration import models as m
from registration.roster import copy as roster_copy
from registration.roster import sync
from registration.roster.copy import copy_create, write_behind
from registration.services import roster_import
from tests.conftest import ROSTER

pytestmark = pytest.mark.postgresql

_TIMES = {"created_at", "updated_at", "history_date"}


def _snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every roster row, its ids written as offsets from the smallest id of the table
    they point into: two imports into emptied tables compare equal row for row."""
    tables = [
        model
        for model in apps.get_app_config("registration").get_models(include_auto_created=True)
        if model._meta.db_table.startswith("registration_") and model._default_manager.exists()
    ]
    first = {
        model: model._default_manager.aggregate(first=models.Min("pk"))["first"] for model in tables
    }
    snapshot = {}
    for model in tables:
        tracked = getattr(model, "instance_type", None)  # a history model's own model
        rows = []
        for values in model._default_manager.values():
            row = []
            for f in model._meta.concrete_fields:
                value = values[f.attname]
                if f.attname in _TIMES:
                    continue
                if value is not None and f.primary_key:
                    value -= first[model]
                elif value is not None and f.is_relation and f.related_model in first:
                    value -= first[f.related_model]
                elif value is not None and tracked is not None and f.attname == "id":
                    value -= first[tracked]
                row.append((f.attname, value))
            rows.append(tuple(row))
        snapshot[model._meta.db_table] = sorted(rows, key=repr)
    return snapshot


@pytest.mark.django_db(transaction=True)
def test_copy_writes_what_bulk_create_writes():
    assert connection.vendor == "postgresql"
    with mock.patch.object(sync, "copy_create", wraps=copy_create) as copied:
        assert roster_import(path=ROSTER).ok
    assert copied.call_count >= 10  # every table of the bundle went through COPY
    by_copy = _snapshot()
    assert by_copy["registration_historicalstudent"]  # history rows too

    call_command("flush", interactive=False, verbosity=0)
    with mock.patch.object(sync, "copy_available", return_value=False):
        assert roster_import(path=ROSTER).ok
    by_bulk_create = _snapshot()

    assert by_copy.keys() == by_bulk_create.keys()
    for table, rows in by_copy.items():
        assert rows == by_bulk_create[table], table


@pytest.mark.django_db(transaction=True)
def test_copy_takes_ids_from_the_sequence_and_history_its_change_reason():
    """Ids come from the table's sequence, so a row saved after the import (a guardian
    adding a phone) gets the next one; every new row has one "+" history row."""
    assert roster_import(path=ROSTER).ok
    guardian = m.Guardian.objects.order_by("pk").first()
    assert guardian is not None
    latest = m.ContactPoint.objects.order_by("-pk").first()
    assert latest is not None
    added = m.ContactPoint.objects.create(
        guardian=guardian, kind="phone", phone="+16505550199", position=9
    )
    assert added.pk > latest.pk
    history = m.Student.history.filter(history_type="+")
    assert history.count() == m.Student.objects.count()
    assert set(history.values_list("history_change_reason", flat=True)) == {"roster import"}
    assert set(history.values_list("history_user_id", flat=True)) == {None}


# -- write-behind: COPYs sent by a second thread while the import goes on ------------


def _districts(count: int) -> list[dict[str, Any]]:
    return [
        {"sourced_id": f"dst-wb-{i}", "name": f"District {i}", "identifier": ""}
        for i in range(count)
    ]


def _copy_districts(count: int) -> list[int]:
    return copy_create(
        m.District, _districts(count), now=timezone.now(), history=None, change_reason="test"
    )


@pytest.mark.django_db(transaction=True)
def test_a_query_after_a_queued_copy_sees_its_rows():
    now = timezone.now()
    with transaction.atomic(), write_behind():
        pks = _copy_districts(500)
        schools = copy_create(
            m.School,
            [
                {
                    "sourced_id": f"sch-wb-{i}",
                    "name": f"School {i}",
                    "identifier": "",
                    "district_id": pk,
                }
                for i, pk in enumerate(pks)
            ],
            now=now,
            history=None,
            change_reason="test",
        )
        households = copy_create(
            m.Household,
            [{"sourced_id": f"hh-wb-{i}", "street1": f"{i} Main St"} for i in range(500)],
            now=now,
            history=m.Household.history,
            change_reason="test",
        )
        # The queries wait for the COPYs before them, on the same transaction.
        assert m.School.objects.filter(pk__in=schools, district_id__in=pks).count() == 500
        history = m.Household.history.filter(history_type="+", history_change_reason="test")
        assert sorted(history.values_list("id", "street1")) == [
            (pk, f"{i} Main St") for i, pk in enumerate(households)
        ]
    assert m.District.objects.filter(pk__in=pks).count() == 500


@pytest.mark.django_db(transaction=True)
def test_ids_are_taken_as_one_block_from_the_sequence():
    with transaction.atomic(), write_behind():
        pks = _copy_districts(300)
    assert pks == list(range(pks[0], pks[0] + 300))
    later = m.District.objects.create(sourced_id="dst-later", name="Later")
    assert later.pk == pks[-1] + 1  # the sequence moved past the block, and on by one


@pytest.mark.django_db(transaction=True)
def test_a_sequence_with_its_own_increment_gets_one_nextval_each():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('registration_district', 'id')")
        (sequence,) = cursor.fetchone()
        cursor.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY 5")
    try:
        with transaction.atomic(), write_behind():
            pks = _copy_districts(4)
        assert [b - a for a, b in itertools.pairwise(pks)] == [5, 5, 5]
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY 1")


@pytest.mark.django_db(transaction=True)
def test_a_copy_that_fails_raises_at_the_next_query_and_writes_nothing():
    missing_school = 10**9
    with pytest.raises(IntegrityError), transaction.atomic(), write_behind():
        copy_create(
            m.Student,
            [
                {
                    "sourced_id": "stu-wb",
                    "given_name": "Ada",
                    "family_name": "Ng",
                    "grade": "05",
                    "school_id": missing_school,
                }
            ],
            now=timezone.now(),
            history=None,
            change_reason="test",
        )
        # The foreign key is checked as the COPY ends, not at the commit: the next
        # query already says so.
        m.District.objects.count()
        pytest.fail("the query ran after a failed COPY")
    assert not m.Student.objects.exists()
    assert not any(t.name.startswith("roster-copy") for t in threading.enumerate())


@pytest.mark.django_db(transaction=True)
def test_an_import_whose_copy_fails_is_refused_and_changes_nothing():
    assert roster_import(path=ROSTER).ok
    before = m.Student.objects.count(), m.Guardian.history.count()
    # As if the tables had been emptied by someone else between looking and writing:
    # the import sends every row again and the unique keys refuse them.
    with mock.patch.object(sync, "nothing_stored", return_value=True):
        report = roster_import(path=ROSTER)
    assert not report.ok
    assert "the database refused the import, nothing was written" in str(report.problems.errors[0])
    assert (m.Student.objects.count(), m.Guardian.history.count()) == before
    assert not any(t.name.startswith("roster-copy") for t in threading.enumerate())


@pytest.mark.django_db(transaction=True)
def test_a_second_import_outside_any_transaction_finds_the_first_ones_rows():
    """The second connection that says whether a table is empty sees what the first
    import committed: the second import of the same bundle writes nothing."""
    assert roster_import(path=ROSTER).ok
    history = m.Student.history.count()
    report = roster_import(path=ROSTER)
    assert report.ok
    assert report.total().created == 0 and report.total().updated == 0
    assert m.Student.history.count() == history


def test_inside_a_larger_transaction_stored_rows_are_read_on_its_connection(db):
    """Rows this transaction wrote are invisible to the second connection: inside a
    larger transaction (a test's, or a caller's) the import asks its own."""
    assert roster_import(path=ROSTER).ok  # not committed: the test's transaction
    report = roster_import(path=ROSTER)
    assert report.ok
    assert report.total().created == 0


@pytest.mark.django_db(transaction=True)
def test_a_sequence_another_transaction_holds_does_not_stop_the_import():
    """A family's transaction that took a contact point id holds the sequence until it
    ends (and may wait for a row the import locked): the import does not wait for it,
    it takes its ids one by one."""
    other = psycopg.connect(**connection.get_connection_params())
    ended = threading.Event()
    try:
        other.execute("SELECT nextval(pg_get_serial_sequence('registration_district', 'id'))")
        # Without the lock timeout the import would wait for this transaction's end.
        timer = threading.Timer(20, lambda: (ended.set(), other.rollback()))
        timer.start()
        with transaction.atomic(), write_behind():
            pks = _copy_districts(50)
        assert not ended.is_set()
        assert m.District.objects.filter(pk__in=pks).count() == 50
    finally:
        timer.cancel()
        other.close()


@pytest.mark.django_db(transaction=True)
def test_without_a_second_connection_the_import_still_writes_everything():
    refused = psycopg.OperationalError("too many clients already")
    with mock.patch.object(roster_copy, "_second_connection", side_effect=refused):
        report = roster_import(path=ROSTER)
    assert report.ok and report.written
    assert m.Student.history.filter(history_type="+").count() == m.Student.objects.count() > 0
