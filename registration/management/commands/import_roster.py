from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registration.roster.importer import ImportReport
from registration.services import roster_import

COLUMNS = ("read", "created", "updated", "unchanged", "skipped", "removed")


def format_report(report: ImportReport, *, max_problems: int) -> tuple[list[str], list[str]]:
    """The report as lines for standard output and lines for standard error."""
    out = [f"Roster import from {report.source}" + (" (dry run)" if report.dry_run else "")]
    if report.files:
        width = max(len(name) for name in report.files) + 2
        out.append("file".ljust(width) + "".join(c.rjust(11) for c in COLUMNS))
        for name, counts in report.files.items():
            out.append(
                name.ljust(width) + "".join(str(getattr(counts, c)).rjust(11) for c in COLUMNS)
            )
        total = report.total()
        out.append(
            "total".ljust(width) + "".join(str(getattr(total, c)).rjust(11) for c in COLUMNS)
        )
    out.extend(report.notes)
    err: list[str] = []
    for label, problems in (
        ("warning", report.problems.warnings),
        ("error", report.problems.errors),
    ):
        if not problems:
            continue
        err.append(f"{len(problems)} {label}{'s' if len(problems) != 1 else ''}:")
        err.extend(f"  {problem}" for problem in problems[:max_problems])
        if len(problems) > max_problems:
            err.append(f"  … and {len(problems) - max_problems} more")
    if report.ok:
        verb = "Checked" if report.dry_run else "Imported"
        out.append(
            f"{verb} in {report.seconds:.1f} s."
            + (" Dry run: nothing was written." if report.dry_run else "")
        )
    else:
        err.append("Nothing was imported: fix the errors above and run the import again.")
    return out, err


class Command(BaseCommand):
    help = (
        "Import a roster bundle (a folder or zip of OneRoster 1.1 CSV files plus "
        "households.csv and householdMembers.csv; see docs/roster-format.md). Everything "
        "is checked first and written in one transaction: all of it or nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="Folder or .zip file of the bundle.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check and count, but write nothing."
        )
        parser.add_argument(
            "--max-problems",
            type=int,
            default=200,
            help="How many warnings and errors to print (default 200).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = roster_import(
            path=options["path"],
            dry_run=options["dry_run"],
            actor_label=f"import_roster run by {getpass.getuser()}",
        )
        out, err = format_report(report, max_problems=options["max_problems"])
        for line in out:
            self.stdout.write(line)
        for line in err:
            self.stderr.write(line)
        if not report.ok:
            raise CommandError(
                f"{len(report.problems.errors)} error(s) in the roster bundle", returncode=1
            )
