"""How django-allauth fits this product."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django.http import HttpRequest

from config.encryption import decrypt_text, encrypt_text


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Guardians get accounts by activation code; staff from the registrar.
        return False


class MFAAdapter(DefaultMFAAdapter):
    """TOTP secrets are stored encrypted, not in clear as allauth does by default."""

    def encrypt(self, text: str) -> str:
        return encrypt_text(text)

    def decrypt(self, encrypted_text: str) -> str:
        return decrypt_text(encrypted_text)
