"""On PostgreSQL a roster import writes its new rows with COPY: the same rows, and the
same history rows, as ``bulk_create`` and simple-history's ``bulk_history_create``
write on other databases."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection, models

from registration import models as m
from registration.roster import sync
from registration.roster.copy import copy_create
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
