from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count
from django.utils import timezone

from registration.management.commands.import_roster import format_report
from registration.mfa import totp_enrol
from registration.models import ContactPoint, Guardian, School, StaffProfile, User
from registration.roster.synthetic import current_school_year, generate_district
from registration.services import guardian_account_create, roster_import, staff_account_create

DEMO_PASSWORD = "demo-password"  # noqa: S105 - a printed demo sign-in, refused in production


class Command(BaseCommand):
    help = (
        "Build the demo district: generate a realistic roster bundle, import it through "
        "the real importer, and give a member of staff of every role and two guardians "
        "a sign-in. Deterministic for a seed; running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--households", type=int, default=settings.DEMO_HOUSEHOLDS)
        parser.add_argument("--seed", type=int, default=2027)
        parser.add_argument(
            "--password", default=DEMO_PASSWORD, help="Password of every demo sign-in."
        )
        parser.add_argument(
            "--keep-bundle", type=Path, help="Also write the generated bundle into this folder."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo builds a made-up district; it never runs in production")
        if options["households"] < 1:
            raise CommandError("--households must be at least 1")
        with tempfile.TemporaryDirectory() as temporary:
            folder = options["keep_bundle"] or Path(temporary) / "bundle"
            generate_district(
                folder,
                households=options["households"],
                seed=options["seed"],
                school_year=current_school_year(timezone.localdate()),
                district_name=settings.DISTRICT_NAME,
            )
            report = roster_import(path=folder, actor_label="seed_demo")
        out, err = format_report(report, max_problems=20)
        for line in out:
            self.stdout.write(line)
        for line in err:
            self.stderr.write(line)
        if not report.ok:
            raise CommandError("the demo bundle did not import")
        sign_ins = self.accounts(options["password"])
        self.stdout.write("")
        self.stdout.write(f"Demo sign-ins (password: {options['password']}):")
        for role, email, secret in sign_ins:
            extra = f"  authenticator secret {secret}" if secret else ""
            self.stdout.write(f"  {role:<36} {email}{extra}")
        self.stdout.write(
            "Staff sign in with a second factor: add the secret to an authenticator app, or "
            "print the current code with `python manage.py totp_code EMAIL`."
        )

    def accounts(self, password: str) -> list[tuple[str, str, str]]:
        """(role, email, authenticator secret) of every demo sign-in."""
        sign_ins = []
        admin = User.objects.filter(email="admin@example.org").first() or User(
            username="admin@example.org", email="admin@example.org"
        )
        admin.is_staff = admin.is_superuser = True
        admin.first_name, admin.last_name = "District", "Administrator"
        admin.set_password(password)
        admin.save()
        EmailAddress.objects.update_or_create(
            user=admin, email=admin.email, defaults={"verified": True, "primary": True}
        )
        sign_ins.append(("district administrator", admin.email, totp_enrol(user=admin)))

        for email, role, given, family in (
            ("registrar@example.org", StaffProfile.Role.REGISTRAR, "Rosa", "Delgado"),
            ("finance@example.org", StaffProfile.Role.FINANCE, "Frank", "Okafor"),
        ):
            staff = staff_account_create(
                email=email, role=role, given_name=given, family_name=family, password=password
            )
            sign_ins.append((str(role.label).lower(), email, totp_enrol(user=staff.user)))

        first_school = School.objects.order_by("sourced_id").first()
        for role, label in (
            (StaffProfile.Role.OFFICE, "office staff"),
            (StaffProfile.Role.TEACHER, "teacher"),
        ):
            profile = (
                StaffProfile.objects.filter(role=role, schools=first_school)
                .exclude(email="")
                .order_by("sourced_id")
                .first()
            )
            if profile is None:
                continue
            staff = staff_account_create(
                email=profile.email,
                role=role,
                given_name=profile.given_name,
                family_name=profile.family_name,
                password=password,
                profile=profile,
            )
            sign_ins.append(
                (f"{label}, {first_school}", profile.email, totp_enrol(user=staff.user))
            )

        for language, label in (("en", "guardian"), ("es", "guardian (Spanish)")):
            guardian = self.demo_guardian(language)
            if guardian is None:
                continue
            email = (
                guardian.contact_points.filter(roster_field="email")
                .values_list("email", flat=True)
                .first()
            )
            guardian_account_create(guardian=guardian, email=email or "", password=password)
            sign_ins.append((label, email or "", ""))
        return sign_ins

    def demo_guardian(self, language: str) -> Guardian | None:
        """A guardian of several children with an email, in a household of ``language``."""
        with_email = ContactPoint.objects.filter(roster_field="email").values("guardian_id")
        return (
            Guardian.objects.filter(
                pk__in=with_email,
                households__language=language,
                student_links__has_education_rights=True,
            )
            .annotate(children=Count("student_links", distinct=True))
            .filter(children__gte=2)
            .order_by("sourced_id")
            .first()
        )
