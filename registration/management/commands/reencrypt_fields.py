"""python manage.py reencrypt_fields [--batch-size N]: re-encrypt every encrypted value
with the first key of FIELD_ENCRYPTION_KEYS (see ``registration.reencryption``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registration.reencryption import encrypted_values_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value (health and custody notes, wizard drafts, signed "
        "submissions, staff authenticator secrets) "
        "with the first key of FIELD_ENCRYPTION_KEYS. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Rows per transaction (500)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        tallies = encrypted_values_rotate(batch_size=options["batch_size"])
        for tally in tallies:
            self.stdout.write(
                f"{tally.label}: {tally.rows} rows, {tally.reencrypted} values re-encrypted, "
                f"{tally.current} already under the first key"
                + (f", {len(tally.unreadable)} rows unreadable" if tally.unreadable else "")
            )
        self.stdout.write(
            f"Re-encrypted {sum(t.reencrypted for t in tallies)} values; "
            f"{sum(t.current for t in tallies)} were already under the first key."
        )
        unreadable = [(t.label, pk) for t in tallies for pk in t.unreadable]
        if unreadable:
            shown = ", ".join(f"{label} {pk}" for label, pk in unreadable[:20])
            raise CommandError(
                f"{len(unreadable)} rows hold values no key of FIELD_ENCRYPTION_KEYS "
                f"decrypts ({shown}); they were left as they are. Put back the key that "
                "wrote them and run the command again."
            )
