from __future__ import annotations

import datetime
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
from registration.models import ClassSection, ContactPoint, Guardian, School, StaffProfile, User
from registration.roster.synthetic import current_school_year, generate_district
from registration.selectors import school_year_next
from registration.services import guardian_account_create, roster_import, staff_account_create
from workflow.models import Campaign, EnrollmentDecision, Registration
from workflow.services import acknowledgement_save, campaign_open, campaign_save

DEMO_PASSWORD = "demo-password"  # noqa: S105 - a printed demo sign-in, refused in production
DEMO_REGISTRAR = "registrar@example.org"
# (short name, required, texts) of the documents families accept in the demo campaign.
DEMO_ACKNOWLEDGEMENTS: tuple[tuple[str, bool, dict[str, str]], ...] = (
    (
        "family-handbook",
        True,
        {
            "title_en": "Family handbook",
            "body_en": (
                "I have read the family handbook: attendance, behaviour, safety and the "
                "code of conduct, and I will go over it with my children."
            ),
            "title_es": "Manual para familias",
            "body_es": (
                "He leído el manual para familias: asistencia, conducta, seguridad y el "
                "código de conducta, y lo repasaré con mis hijos."
            ),
            "title_zh": "家庭手册",
            "body_zh": "我已阅读家庭手册：出勤、行为、安全和行为守则，并会和孩子们一起学习。",
        },
    ),
    (
        "photo-day",
        False,
        {
            "title_en": "Photo day",
            "body_en": (
                "Class and yearbook photos are taken in September. The school may show "
                "them in the yearbook and on its website."
            ),
            "title_es": "Día de fotos",
            "body_es": (
                "Las fotos de clase y del anuario se toman en septiembre. La escuela puede "
                "mostrarlas en el anuario y en su sitio web."
            ),
            "title_zh": "拍照日",
            "body_zh": "班级照和年鉴照在九月拍摄。学校可以在年鉴和学校网站上展示这些照片。",
        },
    ),
)


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
        campaign = self.campaign()
        if campaign is not None:
            self.stdout.write("")
            self.stdout.write(self.campaign_line(campaign))
        self.stdout.write(self.fees(campaign))
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
            (DEMO_REGISTRAR, StaffProfile.Role.REGISTRAR, "Rosa", "Delgado"),
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

    def campaign(self) -> Campaign | None:
        """Next school year's campaign, running today, with its two documents, and
        opened. Nothing is added twice: an existing campaign keeps its rules (its dates
        move only when they no longer include today), a document whose short name is
        taken (even by a retired version) is left alone, and opening again only adds
        registrations for households that have none."""
        school_year = school_year_next()
        if school_year is None:
            return None
        label = "seed_demo"
        today = timezone.localdate()
        campaign = Campaign.objects.filter(school_year=school_year).first()
        if campaign is None or not campaign.opens_on <= today <= campaign.closes_on:
            campaign = campaign_save(
                campaign=campaign,
                school_year=school_year,
                opens_on=today - datetime.timedelta(days=1),
                closes_on=today + datetime.timedelta(days=60),
                fees_before_submit=campaign.fees_before_submit if campaign else False,
                approve_with_open_address_request=(
                    campaign.approve_with_open_address_request if campaign else False
                ),
                actor=None,
                actor_label=label,
            )
        for position, (key, required, texts) in enumerate(DEMO_ACKNOWLEDGEMENTS, start=1):
            if not campaign.acknowledgements.filter(key=key).exists():
                acknowledgement_save(
                    campaign=campaign,
                    key=key,
                    texts=texts,
                    required=required,
                    position=position,
                    actor=None,
                    actor_label=label,
                )
        campaign_open(campaign=campaign, actor=None)
        return campaign

    def fees(self, campaign: Campaign | None) -> str:
        """Something to pay on the demo's fees pages: a lunch account, an optional
        yearbook for next year, and a field trip of a class of the demo guardian's
        children. Each is added once (found again by its title)."""
        from payments.models import Fee

        today = timezone.localdate()
        wanted: list[tuple[str, dict[str, Any]]] = [
            (
                "Lunch account",
                {
                    "kind": Fee.Kind.LUNCH_PREPAY,
                    "description": "Money on your child's school lunch account.",
                    "title_es": "Cuenta del almuerzo",
                    "title_zh": "午餐账户",
                    "description_es": "Dinero en la cuenta del almuerzo escolar de su hijo o hija.",
                    "description_zh": "存入孩子学校午餐账户的金额。",
                    "min_amount_cents": 500,
                    "max_amount_cents": 20000,
                    "waivable_for_free_meals": True,
                    "gl_code": "5300-NUTRITION",
                },
            ),
            (
                "Yearbook",
                {
                    "kind": Fee.Kind.OPTIONAL,
                    "description": "The school yearbook, handed out in June.",
                    "title_es": "Anuario",
                    "title_zh": "年鉴",
                    "description_es": "El anuario escolar, que se entrega en junio.",
                    "description_zh": "学校年鉴，六月发放。",
                    "amount_cents": 3500,
                    "campaign": campaign,
                    "gl_code": "4300-YEARBOOK",
                },
            ),
        ]
        guardian = self.demo_guardian("en")
        section = (
            ClassSection.objects.filter(enrollments__student__guardian_links__guardian=guardian)
            .order_by("sourced_id")
            .first()
            if guardian is not None
            else None
        )
        if section is not None:
            wanted.append(
                (
                    "Science museum field trip",
                    {
                        "kind": Fee.Kind.FIELD_TRIP,
                        "description": "Bus, entry and a guided visit.",
                        "title_es": "Excursión al museo de ciencias",
                        "title_zh": "科学博物馆实地考察",
                        "description_es": "Autobús, entrada y visita guiada.",
                        "description_zh": "包括校车、门票和导览。",
                        "amount_cents": 1850,
                        "section": section,
                        "school": section.school,
                        "event_date": today + datetime.timedelta(days=30),
                        "deadline": today + datetime.timedelta(days=21),
                        "gl_code": "4200-TRIPS",
                    },
                )
            )
        for title, values in wanted:
            Fee.objects.get_or_create(title=title, defaults=values)
        titles = ", ".join(title for title, _values in wanted)
        return (
            f"Fees to pay: {titles}. Without STRIPE_SECRET_KEY, paying opens the local TEST "
            "checkout (no real money)."
        )

    def campaign_line(self, campaign: Campaign) -> str:
        documents = ", ".join(
            f"{ack.title_en} ({'required' if ack.required else 'optional'})"
            for ack in campaign.acknowledgements.filter(is_current=True).order_by("position", "key")
        )
        registrations = Registration.objects.filter(campaign=campaign).count()
        decisions = EnrollmentDecision.objects.filter(campaign=campaign).count()
        return (
            f"Re-registration for {campaign.school_year.label} is open from "
            f"{campaign.opens_on:%Y-%m-%d} to {campaign.closes_on:%Y-%m-%d}: "
            f"{registrations} household registrations, {decisions} enrollment decisions; "
            f"documents: {documents or 'none'}. The registrar manages it under Campaigns."
        )

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
