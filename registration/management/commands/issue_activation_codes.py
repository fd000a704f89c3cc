from __future__ import annotations

import csv
import getpass
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from documents.services import letter_run_join, letter_run_start
from registration.grades import PROMOTION_ORDER, grade_rank
from registration.models import Guardian, School, Student
from registration.services import activation_letters_issue
from workflow.services import audit_record

CSV_COLUMNS = (
    "kind",
    "sourced_id",
    "name",
    "household",
    "street1",
    "street2",
    "city",
    "state",
    "postal_code",
    "language",
    "code",
    "expires_on",
)


class Command(BaseCommand):
    help = (
        "Issue a new activation code to every guardian and every secondary student (their "
        "old codes stop working), write the mail-merge CSV (the only place the codes are in "
        "clear text), and optionally the letters as PDF, rendered in chunks by Celery."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--school", help="Only the people of this school (its sourcedId).")
        parser.add_argument(
            "--only-unactivated",
            action="store_true",
            help="Skip people who already have an account.",
        )
        parser.add_argument("--out", type=Path, required=True, help="The CSV to write.")
        parser.add_argument(
            "--letters",
            type=Path,
            help=(
                "Also write the letters PDF here; above ACTIVATION_LETTERS_PER_FILE letters, "
                "several files numbered after this name (letters-1.pdf, letters-2.pdf, ...)."
            ),
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=3600,
            help="Seconds to wait for the letter workers (default 3600).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        guardians = Guardian.objects.filter(enabled=True, student_links__student__enabled=True)
        min_rank = grade_rank(settings.ACTIVATION_STUDENT_MIN_GRADE)
        secondary = [g for g in PROMOTION_ORDER if grade_rank(g) >= min_rank]
        students = Student.objects.filter(enabled=True, grade__in=secondary)
        if options["school"]:
            school = School.objects.filter(sourced_id=options["school"]).first()
            if school is None:
                raise CommandError(f"no school has the sourcedId {options['school']!r}")
            guardians = guardians.filter(student_links__student__school=school)
            students = students.filter(school=school)
        if options["only_unactivated"]:
            guardians = guardians.filter(user__isnull=True)
            students = students.filter(user__isnull=True)
        guardians = guardians.filter(~Q(householdguardian=None)).distinct().order_by("pk")
        students = students.order_by("pk")

        actor_label = f"issue_activation_codes run by {getpass.getuser()}"
        letters = activation_letters_issue(
            guardians=guardians.iterator(chunk_size=2000),
            students=students.iterator(chunk_size=2000),
            actor_label=actor_label,
        )
        out: Path = options["out"]
        # Readable by the operator only: it holds every code in clear text.
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for letter in letters:
                writer.writerow(
                    [
                        letter.kind,
                        letter.sourced_id,
                        letter.name,
                        letter.household,
                        letter.street1,
                        letter.street2,
                        letter.city,
                        letter.state,
                        letter.postal_code,
                        letter.language,
                        letter.code,
                        letter.expires_on.isoformat(),
                    ]
                )
        guardian_count = sum(1 for letter in letters if letter.kind == "guardian")
        self.stdout.write(
            f"Issued {len(letters)} codes ({guardian_count} guardians, "
            f"{len(letters) - guardian_count} students); mail merge in {out}"
        )
        audit_record(
            action="create",
            object_type="registration.activationcode",
            actor_label=actor_label,
            detail={
                "codes": len(letters),
                "school": options["school"] or "",
                "only_unactivated": options["only_unactivated"],
                "letters": bool(options["letters"]),
            },
        )
        if options["letters"] and letters:
            run = letter_run_start(letters=letters)
            joined = letter_run_join(run=run, out=options["letters"], timeout=options["timeout"])
            if len(joined.files) == 1:
                self.stdout.write(f"Letters: {joined.pages} pages in {joined.files[0]}")
            else:
                self.stdout.write(
                    f"Letters: {joined.pages} pages in {len(joined.files)} files of at most "
                    f"{settings.ACTIVATION_LETTERS_PER_FILE} letters each: "
                    + ", ".join(str(path) for path in joined.files)
                )
