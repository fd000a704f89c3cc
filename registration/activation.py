"""Activation codes: how they look, how they are typed back, how they are stored.

A code is 16 symbols from an alphabet without look-alikes (no 0/O, no 1/I/L), which is
about 79 bits from ``secrets``, shown in groups of four: ``7KQM-3TXA-PW9R-4HCF``.
It is stored only as a keyed lookup hash (to find it) and a salted hash (to check it);
the clear code exists only in the mail-merge file, the letter and the email.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 16
GROUP = 4


def code_generate() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def code_display(code: str) -> str:
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def code_normalise(text: str) -> str | None:
    """The code as typed (any case, spaces or dashes), or None if it cannot be one."""
    code = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def code_lookup(code: str) -> str:
    """A keyed hash to find a code by: useless without the server's key."""
    key = settings.ACTIVATION_CODE_KEY.encode()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def code_salt() -> str:
    return secrets.token_hex(16)


def code_hash(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def code_matches(code: str, salt: str, stored_hash: str) -> bool:
    return hmac.compare_digest(code_hash(code, salt), stored_hash)
