"""python manage.py purge_expired [--dry-run]: remove proofs of residence, wizard
drafts, activation codes and dispatched outbox rows kept past their retention period
(see ``workflow.retention``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from workflow.retention import purge_expired


class Command(BaseCommand):
    help = "Remove proofs, drafts and activation codes kept past their retention period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be removed; remove nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = purge_expired(dry_run=options["dry_run"])
        self.stdout.write(
            f"Retention: proofs {settings.RETENTION_PROOF_DAYS} days after the address "
            f"change closed, drafts {settings.RETENTION_DRAFT_DAYS} days after the campaign "
            f"closed, codes {settings.RETENTION_CODE_DAYS} days after they were spent, "
            f"outbox rows {settings.RETENTION_OUTBOX_DAYS} days after they were dispatched."
        )
        verb = "Would remove" if options["dry_run"] else "Removed"
        self.stdout.write(
            f"{verb} {report.proofs} proofs of residence ({report.proof_requests} address "
            f"changes), {report.drafts} wizard drafts, {report.codes} activation codes, "
            f"{report.outbox} outbox rows."
        )
