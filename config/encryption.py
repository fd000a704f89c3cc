"""Symmetric encryption for what the database or the broker must not hold in clear:
children's health notes (``EncryptedTextField``), the wizard's drafts and the signed
submissions, which hold the same notes (``EncryptedJSONField``), sessions (which cache
the drafts and the reviewed content: ``EncryptedJSONSerializer``), staff TOTP secrets,
activation codes on their way to the letter renderer.

Keys come from ``FIELD_ENCRYPTION_KEYS``: the first encrypts, every one decrypts, so a
key can be rotated by putting the new one first; ``manage.py reencrypt_fields`` then
re-encrypts what the older keys wrote, after which they can be removed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.conf import settings
from django.db import models


class UndecryptableValue(ValueError):
    """A stored value that no key of ``FIELD_ENCRYPTION_KEYS`` decrypts."""


def _key(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_key(key) for key in keys])


def _keys() -> tuple[str, ...]:
    return tuple(settings.FIELD_ENCRYPTION_KEYS)


def encrypt_text(text: str) -> str:
    return _fernet(_keys()).encrypt(text.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return _fernet(_keys()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableValue(
            "A stored value cannot be decrypted with any key of FIELD_ENCRYPTION_KEYS: "
            "was the key that encrypted it removed before `reencrypt_fields` ran?"
        ) from None


def token_is_current(token: str) -> bool:
    """Whether the first key (the one that encrypts) decrypts ``token``."""
    try:
        _fernet(_keys()[:1]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def token_rotate(token: str) -> str:
    """``token`` encrypted again with the first key (raises ``UndecryptableValue``
    when no key decrypts it)."""
    try:
        return _fernet(_keys()).rotate(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableValue(
            "A stored value cannot be decrypted with any key of FIELD_ENCRYPTION_KEYS."
        ) from None


class EncryptedTextField(models.TextField):
    """Text kept encrypted in the database (and in its history tables) and read back
    in clear.

    Every value, the empty one included, is stored as a Fernet token with a random
    IV, so equal texts give different tokens: the database cannot compare, search or
    order them, and every lookup but ``isnull`` is refused rather than silently
    matching nothing.
    """

    description = "Text encrypted at rest"

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        value = super().get_db_prep_save(value, connection)
        if value is None or hasattr(value, "as_sql"):
            return value  # an expression (reencrypt_fields writes stored tokens so)
        return encrypt_text(str(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        return decrypt_text(value)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        return None


class EncryptedJSONField(EncryptedTextField):
    """JSON kept encrypted in the database and read back as Python values, like a
    ``JSONField`` whose column the database cannot read.

    The value is written as JSON text, then encrypted as ``EncryptedTextField`` does,
    so the database can neither look inside it (no key, containment or comparison
    lookups: only ``isnull``) nor tell equal values apart.
    """

    description = "JSON encrypted at rest"
    # What models accept and give, for django-stubs: JSON values, not text.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def get_prep_value(self, value: Any) -> Any:
        if value is None or hasattr(value, "resolve_expression"):
            return value
        return json.dumps(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return json.loads(decrypt_text(value))

    def to_python(self, value: Any) -> Any:
        return value  # already Python values, as with JSONField

    def value_to_string(self, obj: models.Model) -> Any:
        return self.value_from_object(obj)

    def formfield(
        self, form_class: Any = None, choices_form_class: Any = None, **kwargs: Any
    ) -> Any:
        return models.Field.formfield(
            self, form_class or forms.JSONField, choices_form_class, **kwargs
        )


class EncryptedJSONSerializer:
    """``SESSION_SERIALIZER``: session data as JSON, encrypted. The wizard caches a
    family's drafts and the content it reviewed in the session, health notes
    included, and sessions live in the database.

    A session no key decrypts any more (its key was removed) reads as empty: the
    visitor signs in again."""

    def dumps(self, obj: Any) -> bytes:
        return encrypt_text(json.dumps(obj, separators=(",", ":"))).encode("ascii")

    def loads(self, data: bytes) -> Any:
        return json.loads(decrypt_text(data.decode("ascii")))
