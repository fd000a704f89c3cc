from __future__ import annotations

import datetime
import getpass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflow.sis_export import CHANGES, sis_export_create, sis_export_write


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--since takes a date written YYYY-MM-DD, not {value!r}") from error


class Command(BaseCommand):
    help = (
        "Write the approved changes not yet exported into OUTDIR for the SIS (a OneRoster "
        "1.1 delta bundle plus changes.csv), and mark them and their registrations exported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("outdir", type=Path)
        parser.add_argument(
            "--since",
            type=str,
            help="Only changes approved on or after this date (YYYY-MM-DD).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = _date(options["since"]) if options["since"] else None
        export = sis_export_create(
            actor_label=f"export_changes run by {getpass.getuser()}", since=since
        )
        report = sis_export_write(export=export, folder=options["outdir"])
        for name, count in report.rows.items():
            self.stdout.write(f"{name:<24}{count:>10} rows")
        if export is None:
            self.stdout.write(f"Nothing to export: {CHANGES} holds only its header.")
        else:
            self.stdout.write(
                f"Export {export.pk}: {export.changes} changes of "
                f"{export.registrations} registrations, written to {report.folder}"
            )
