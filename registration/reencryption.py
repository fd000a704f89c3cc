"""Re-encrypting every encrypted value with the first key of ``FIELD_ENCRYPTION_KEYS``
(``python manage.py reencrypt_fields``), the second step of a key rotation: put the new
key first, keep the old ones after it, restart, re-encrypt, then remove the old keys.

What is encrypted: every ``EncryptedTextField`` of every model, history tables
included (children's health and custody notes; ``EncryptedJSONField`` is one too: the wizard's
drafts and the signed submissions), and the secrets of staff authenticators (TOTP
secrets, recovery code seeds). Sessions are not re-encrypted: they last
``SESSION_IDLE_SECONDS``, and one that no key decrypts any more is simply empty.
Values the first key already decrypts are left alone, so a second run changes nothing
and an interrupted run can simply be started again. Rows are read, rotated and written
in batches, each batch locked for its transaction so that a change made meanwhile is
never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from allauth.mfa.models import Authenticator
from django.apps import apps
from django.db import models, transaction
from django.db.models import ExpressionWrapper, F, TextField, Value

from config.encryption import (
    EncryptedTextField,
    UndecryptableValue,
    token_is_current,
    token_rotate,
)

# Keys of an authenticator's ``data`` that allauth encrypts through our MFA adapter.
AUTHENTICATOR_SECRETS = ("secret", "seed")
AUTHENTICATOR_SECRET_LISTS = ("migrated_codes",)


@dataclass
class Tally:
    """What one model's run found: rows read, encrypted values re-encrypted with the
    first key, values already under it, and rows holding a value no key decrypts."""

    label: str
    rows: int = 0
    reencrypted: int = 0
    current: int = 0
    unreadable: list[Any] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.reencrypted += other.reencrypted
        self.current += other.current


def encrypted_fields() -> dict[type[models.Model], list[EncryptedTextField]]:
    """Every concrete model with encrypted fields (``EncryptedJSONField`` included),
    history models included."""
    found: dict[type[models.Model], list[EncryptedTextField]] = {}
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found[model] = fields
    return found


def _rotated(token: str | None, tally: Tally) -> str | None:
    """The token under the first key, or None when it needs no change."""
    if token is None or token_is_current(token):
        if token is not None:
            tally.current += 1
        return None
    rotated = token_rotate(token)
    tally.reencrypted += 1
    return rotated


def _model_rotate(
    model: type[models.Model], fields: list[EncryptedTextField], batch_size: int
) -> Tally:
    tally = Tally(label=model._meta.label)
    pk_name = model._meta.pk.attname
    # The stored tokens, not the decrypted text the fields would give.
    raw = {
        f"stored_{f.attname}": ExpressionWrapper(F(f.attname), output_field=TextField())
        for f in fields
    }
    manager = model._default_manager
    last: Any = None
    while True:
        with transaction.atomic():
            rows = manager.select_for_update().order_by(pk_name).annotate(**raw)
            if last is not None:
                rows = rows.filter(**{f"{pk_name}__gt": last})
            batch = list(rows.values_list(pk_name, *raw)[:batch_size])
            if not batch:
                break
            changed = []
            for pk, *tokens in batch:
                tally.rows += 1
                counted = Tally(label=tally.label)
                try:
                    rotated = [_rotated(token, counted) for token in tokens]
                except UndecryptableValue:
                    tally.unreadable.append(pk)
                    continue
                tally.add(counted)
                if any(value is not None for value in rotated):
                    row = model(**{pk_name: pk})
                    for f, old, new in zip(fields, tokens, rotated, strict=True):
                        # Written as stored: a Value of plain text is not encrypted again.
                        setattr(row, f.attname, Value(new or old, output_field=TextField()))
                    changed.append(row)
            if changed:
                manager.bulk_update(changed, [f.attname for f in fields])
        last = batch[-1][0]
    return tally


def _authenticator_data_rotate(data: dict[str, Any], tally: Tally) -> dict[str, Any] | None:
    updated = dict(data)
    for key in AUTHENTICATOR_SECRETS:
        if isinstance(data.get(key), str):
            updated[key] = _rotated(data[key], tally) or data[key]
    for key in AUTHENTICATOR_SECRET_LISTS:
        if isinstance(data.get(key), list):
            updated[key] = [_rotated(token, tally) or token for token in data[key]]
    return updated if updated != data else None


def _authenticators_rotate(batch_size: int) -> Tally:
    tally = Tally(label=Authenticator._meta.label)
    last = 0
    while True:
        with transaction.atomic():
            batch = list(
                Authenticator.objects.select_for_update()
                .filter(pk__gt=last)
                .order_by("pk")
                .values_list("pk", "data")[:batch_size]
            )
            if not batch:
                break
            for pk, data in batch:
                tally.rows += 1
                counted = Tally(label=tally.label)
                try:
                    updated = _authenticator_data_rotate(data or {}, counted)
                except UndecryptableValue:
                    tally.unreadable.append(pk)
                    continue
                tally.add(counted)
                if updated is not None:
                    Authenticator.objects.filter(pk=pk).update(data=updated)
        last = batch[-1][0]
    return tally


def encrypted_values_rotate(*, batch_size: int = 500) -> list[Tally]:
    """Re-encrypt with the first key every value an older key wrote; one tally per
    model. Values no key decrypts are left as they are and listed in the tally."""
    tallies = [
        _model_rotate(model, fields, batch_size)
        for model, fields in sorted(encrypted_fields().items(), key=lambda i: i[0]._meta.label)
    ]
    tallies.append(_authenticators_rotate(batch_size))
    return tallies
