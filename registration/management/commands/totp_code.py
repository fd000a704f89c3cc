from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from registration.mfa import totp_code, totp_secret
from registration.models import User


class Command(BaseCommand):
    help = "Print the current sign-in code of a demo staff user's authenticator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("totp_code is for the demo; staff use their authenticator app")
        user = User.objects.filter(email__iexact=options["email"]).first()
        secret = totp_secret(user) if user is not None else None
        if secret is None:
            raise CommandError(f"{options['email']} has no authenticator")
        self.stdout.write(totp_code(secret))
