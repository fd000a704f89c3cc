"""Every write to the district's records goes through a function here."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from registration.models import Guardian, School, StaffProfile, User
from registration.roster.exporter import ExportReport
from registration.roster.exporter import roster_export as _roster_export
from registration.roster.importer import ImportReport
from registration.roster.importer import roster_import as _roster_import

REGISTRAR_GROUP = "Registrars"
# The registrar keeps the district's records in the admin; nobody deletes them there.
REGISTRAR_APPS = ("registration", "workflow")


def roster_import(*, path: Path, dry_run: bool = False, actor_label: str = "") -> ImportReport:
    """Import a roster bundle (folder or zip); see ``registration.roster.importer``."""
    return _roster_import(path=path, dry_run=dry_run, actor_label=actor_label)


def roster_export(*, folder: Path, actor_label: str = "") -> ExportReport:
    """Write the district's roster records as a bundle into ``folder``, and log it."""
    from workflow.services import audit_record

    report = _roster_export(folder=folder)
    audit_record(
        action="export",
        object_type="registration.roster",
        actor_label=actor_label,
        detail={"rows": report.rows},
    )
    return report


def registrar_group_ensure() -> Group:
    """The group whose members may view, add and change records in the admin."""
    group, _ = Group.objects.get_or_create(name=REGISTRAR_GROUP)
    permissions = Permission.objects.filter(content_type__app_label__in=REGISTRAR_APPS).exclude(
        codename__startswith="delete_"
    )
    group.permissions.set(permissions)
    return group


def _user_for_email(email: str) -> User:
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User(username=email[:150], email=email)
    return user


def _verified_email(user: User) -> None:
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )


@transaction.atomic
def staff_account_create(
    *,
    email: str,
    role: str,
    given_name: str,
    family_name: str,
    password: str | None,
    schools: Iterable[School] = (),
    profile: StaffProfile | None = None,
) -> StaffProfile:
    """Give a member of staff a sign-in (a new profile, or a roster one in ``profile``).

    Registrars reach the admin; the other roles work only in the staff pages.
    Without ``password`` the person sets one through "forgot password".
    """
    user = _user_for_email(email)
    user.first_name, user.last_name = given_name, family_name
    user.is_staff = role == StaffProfile.Role.REGISTRAR
    if password:
        user.set_password(password)
    elif user.pk is None:
        user.set_unusable_password()
    user.save()
    _verified_email(user)
    if role == StaffProfile.Role.REGISTRAR:
        user.groups.add(registrar_group_ensure())
    if profile is None:
        profile = StaffProfile.objects.filter(user=user).first() or StaffProfile()
    profile.user = user
    profile.role = role
    profile.given_name, profile.family_name = given_name, family_name
    profile.email = user.email
    profile.save()
    if schools:
        profile.schools.add(*schools)
    return profile


@transaction.atomic
def guardian_account_create(*, guardian: Guardian, email: str, password: str) -> User:
    """Make a guardian's sign-in with a verified email (activation does this once the
    code and a family fact are checked)."""
    user = guardian.user or _user_for_email(email)
    user.email = email.strip().lower()
    user.first_name, user.last_name = guardian.given_name, guardian.family_name
    user.set_password(password)
    user.save()
    _verified_email(user)
    if guardian.user_id != user.pk:
        guardian.user = user
        guardian.save(update_fields=["user", "updated_at"])
    return user
