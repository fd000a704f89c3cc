"""Bringing one table in line with what a roster bundle says, in bulk.

``sync_table`` compares the wanted rows with the rows already stored (one query),
then creates, updates and removes only what differs, in batches, and writes
django-simple-history rows for tracked models. It is what makes a second import
of the same bundle write nothing at all.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import CharField, Model, Q
from django.db.models.functions import Cast
from phonenumber_field.modelfields import PhoneNumberField

from registration.roster.copy import copy_available, copy_create, nothing_stored

BATCH_SIZE = 2000

# A natural key: a sourcedId, or a tuple of values for composite keys.
Key = Any


@dataclass
class TableSpec:
    """How the rows of one model are keyed and compared.

    ``key`` and ``fields`` are attribute names (``school_id``, not ``school``).
    ``scope`` limits the stored rows this bundle speaks for; ``remove`` says which of
    the stored rows that the bundle no longer lists are to be deleted.
    ``release_first`` names a boolean field whose ``False`` updates must land before
    its ``True`` updates (for a unique constraint on the true rows). ``blank_first``
    names text fields unique when not blank: rows changing them are blanked first, so
    that two rows can swap values.
    """

    model: type[Model]
    key: tuple[str, ...]
    fields: tuple[str, ...]
    scope: Q | None = None
    remove: Callable[[Key], bool] | None = None
    release_first: str | None = None
    blank_first: tuple[str, ...] = ()


@dataclass
class SyncResult:
    created: list[Key] = field(default_factory=list)
    updated: dict[Key, set[str]] = field(default_factory=dict)
    removed: list[Key] = field(default_factory=list)
    pks: dict[Key, int] = field(default_factory=dict)


def _history_manager(model: type[Model]) -> Any:
    history = getattr(model, "history", None)
    return history if hasattr(history, "bulk_history_create") else None


def _phone_fields(model: type[Model], names: tuple[str, ...]) -> set[str]:
    return {
        f.attname
        for f in model._meta.concrete_fields
        if f.attname in names and isinstance(f, PhoneNumberField)
    }


def load_existing(spec: TableSpec) -> dict[Key, tuple[int, tuple[Any, ...]]]:
    """Stored rows as ``{key: (pk, field values)}``, phone numbers as plain text."""
    queryset = spec.model._default_manager.all()
    if spec.scope is not None:
        queryset = queryset.filter(spec.scope)
    if nothing_stored(queryset):
        return {}  # a first import: no need to wait for the COPYs before this one
    phones = _phone_fields(spec.model, spec.fields)
    columns: list[Any] = ["pk", *spec.key]
    # Phone numbers are read as text: parsing each one back into a PhoneNumber
    # costs more than the whole comparison.
    columns += [Cast(f, output_field=CharField()) if f in phones else f for f in spec.fields]
    width = len(spec.key)
    existing: dict[Key, tuple[int, tuple[Any, ...]]] = {}
    for row in queryset.values_list(*columns).iterator(chunk_size=BATCH_SIZE):
        key = row[1] if width == 1 else row[1 : 1 + width]
        values = tuple(
            "" if v is None and f in phones else v
            for f, v in zip(spec.fields, row[1 + width :], strict=True)
        )
        existing[key] = (row[0], values)
    return existing


def sync_table(
    spec: TableSpec,
    wanted: Mapping[Key, dict[str, Any]],
    *,
    now: datetime.datetime,
    change_reason: str,
) -> SyncResult:
    """Create, update and remove rows of ``spec.model`` so that they match ``wanted``."""
    model = spec.model
    result = SyncResult()
    existing = load_existing(spec)
    history = _history_manager(model)
    has_updated_at = any(f.attname == "updated_at" for f in model._meta.concrete_fields)

    to_create: list[Key] = [] if existing else list(wanted)
    for key, values in wanted.items() if existing else ():
        stored = existing.get(key)
        if stored is None:
            to_create.append(key)
            continue
        pk, stored_values = stored
        result.pks[key] = pk
        changed = {
            name
            for name, old in zip(spec.fields, stored_values, strict=True)
            if values[name] != old
        }
        if changed:
            result.updated[key] = changed

    if spec.remove is not None:
        result.removed = [k for k in existing if k not in wanted and spec.remove(k)]
        removed_pks = [existing[k][0] for k in result.removed]
        for start in range(0, len(removed_pks), BATCH_SIZE):
            # Model.delete() per batch so that history records each removal.
            model._default_manager.filter(pk__in=removed_pks[start : start + BATCH_SIZE]).delete()

    if result.updated:
        _update(
            spec,
            wanted,
            result,
            now=now,
            history=history,
            has_updated_at=has_updated_at,
            change_reason=change_reason,
        )

    if to_create:
        if len(spec.key) == 1:
            (name,) = spec.key
            rows = [{name: key, **wanted[key]} for key in to_create]
        else:
            rows = [{**dict(zip(spec.key, key, strict=True)), **wanted[key]} for key in to_create]
        pks = _create(model, rows, now=now, history=history, change_reason=change_reason)
        for key, pk in zip(to_create, pks, strict=True):
            result.pks[key] = pk
        result.created = to_create
    return result


def _create(
    model: type[Model],
    rows: list[dict[str, Any]],
    *,
    now: datetime.datetime,
    history: Any,
    change_reason: str,
) -> list[int]:
    """Insert new rows and their "+" history rows; their primary keys in order.
    PostgreSQL takes them through ``COPY``, other databases through ``bulk_create``."""
    if copy_available():
        return copy_create(model, rows, now=now, history=history, change_reason=change_reason)
    objects = [model(**row) for row in rows]
    model._default_manager.bulk_create(objects, batch_size=BATCH_SIZE)
    if history is not None:
        history.bulk_history_create(
            objects,
            batch_size=BATCH_SIZE,
            default_change_reason=change_reason,
            default_date=now,
        )
    return [obj.pk for obj in objects]


def _update(
    spec: TableSpec,
    wanted: Mapping[Key, dict[str, Any]],
    result: SyncResult,
    *,
    now: datetime.datetime,
    history: Any,
    has_updated_at: bool,
    change_reason: str,
) -> None:
    model = spec.model
    keys = list(result.updated)
    for name in spec.blank_first:
        changing = [result.pks[k] for k in keys if name in result.updated[k]]
        for start in range(0, len(changing), BATCH_SIZE):
            model._default_manager.filter(pk__in=changing[start : start + BATCH_SIZE]).update(
                **{name: ""}
            )
    passes = [keys]
    if spec.release_first:
        flag = spec.release_first
        passes = [[k for k in keys if not wanted[k][flag]], [k for k in keys if wanted[k][flag]]]
    for keys_in_pass in passes:
        for start in range(0, len(keys_in_pass), BATCH_SIZE):
            batch = keys_in_pass[start : start + BATCH_SIZE]
            pk_of = {result.pks[k]: k for k in batch}
            # Whole rows, so that history rows carry every field, not only the changed.
            objects = list(model._default_manager.filter(pk__in=pk_of))
            fields: set[str] = set()
            for obj in objects:
                key = pk_of[obj.pk]
                for name in result.updated[key]:
                    setattr(obj, name, wanted[key][name])
                fields |= result.updated[key]
                if has_updated_at:
                    obj.updated_at = now  # type: ignore[attr-defined]
            if has_updated_at:
                fields.add("updated_at")
            model._default_manager.bulk_update(objects, sorted(fields))
            if history is not None:
                history.bulk_history_create(
                    objects,
                    batch_size=BATCH_SIZE,
                    update=True,
                    default_change_reason=change_reason,
                    default_date=now,
                )
