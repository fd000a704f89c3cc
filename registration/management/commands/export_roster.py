from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from registration.services import roster_export


class Command(BaseCommand):
    help = (
        "Write the district's records as a roster bundle (the files import_roster reads) "
        "into OUTDIR."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("outdir", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        report = roster_export(
            folder=options["outdir"], actor_label=f"export_roster run by {getpass.getuser()}"
        )
        for name, count in report.rows.items():
            self.stdout.write(f"{name:<24}{count:>10} rows")
        self.stdout.write(f"Exported to {report.folder}")
