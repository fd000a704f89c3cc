from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.eligibility import (
    MAX_FILE_BYTES,
    EligibilityFileMalformed,
    eligibility_file_read,
    meal_eligibility_import,
)


class Command(BaseCommand):
    help = (
        "Import free and reduced-price meal eligibility from the nutrition office's CSV "
        "file (columns student and status: free, reduced or none). Every line is "
        "checked first; a file with any bad line changes nothing. Eligible students "
        "have the fees that allow it waived."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The CSV file.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check every line, but change nothing."
        )
        parser.add_argument(
            "--max-problems",
            type=int,
            default=200,
            help="How many bad lines to print (default 200).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise CommandError(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MB.")
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}") from None
        try:
            checked = eligibility_file_read(data)
        except EligibilityFileMalformed as malformed:
            raise CommandError(f"{path.name}: {malformed.message}") from None
        if not checked.ok:
            limit = options["max_problems"]
            for line, message in checked.errors[:limit]:
                self.stderr.write(f"{path.name}:{line}: {message}")
            if len(checked.errors) > limit:
                self.stderr.write(f"… and {len(checked.errors) - limit} more")
            raise CommandError(
                f"{len(checked.errors)} bad line(s): nothing was changed. Correct the file "
                "and run the import again."
            )
        if options["dry_run"]:
            self.stdout.write(f"{len(checked.rows)} lines checked; dry run: nothing was changed.")
            return
        result = meal_eligibility_import(
            rows=checked.rows,
            actor_label=f"import_meal_eligibility run by {getpass.getuser()}",
            source=str(path),
        )
        self.stdout.write(
            f"{result.rows} students read; eligibility changed for {result.changed} "
            f"({result.free} free, {result.reduced} reduced in the file). "
            f"{result.waived.waivers} fees waived "
            f"(${result.waived.waived_cents // 100:,}.{result.waived.waived_cents % 100:02d})."
        )
