"""How django-allauth fits this product."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from config.encryption import decrypt_text, encrypt_text
from config.languages import language_cookie_set, product_language


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Guardians get accounts by activation code; staff from the registrar.
        return False

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """Account emails (confirming an address, resetting a password) in the
        language the guardian reads, not that of the browser that asked for them."""
        from registration.selectors import guardian_for
        from registration.services import guardian_language

        user = context.get("user")
        guardian = guardian_for(user) if user is not None and user.pk else None
        if guardian is None:
            super().send_mail(template_prefix, email, context)
            return
        with translation.override(guardian_language(guardian)):
            super().send_mail(template_prefix, email, context)

    def post_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse:
        """A guardian signed in on any device reads the site in the language they
        chose (at activation or with the language switch), not the browser's."""
        from registration.selectors import guardian_for

        response: HttpResponse = super().post_login(request, user, **kwargs)
        guardian = guardian_for(user)
        language = product_language(guardian.language) if guardian is not None else None
        if language is not None:
            translation.activate(language)
            language_cookie_set(response, language)
        return response


class MFAAdapter(DefaultMFAAdapter):
    """TOTP secrets are stored encrypted, not in clear as allauth does by default."""

    def encrypt(self, text: str) -> str:
        return encrypt_text(text)

    def decrypt(self, encrypted_text: str) -> str:
        return decrypt_text(encrypted_text)
