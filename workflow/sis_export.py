"""The export of approved changes to the student information system (SIS).

``sis_export_create`` claims, in one transaction, every change record not yet
exported for a new ``SisExport`` and moves the approved registrations approved →
exported. ``sis_export_write`` then writes that export's files from the database,
so that an export can be written again (a download that was lost) and always holds
the same changes:

- ``manifest.csv``, ``users.csv`` and ``demographics.csv``: a OneRoster 1.1 bundle in
  **delta** mode, with only the guardians and students whose records changed, in the
  formats ``export_roster`` writes (a SIS reading a bulk bundle would drop everyone
  the file leaves out);
- ``changes.csv``: one row per changed field, with the same columns every time. The
  changes of emergency contacts, preferences, consents, enrollment for next year and
  addresses are only here. Health is never recorded, so never exported.
"""

from __future__ import annotations

import datetime
import io
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from registration.models import School
from registration.roster import exporter
from registration.roster import format as fmt
from workflow.models import AuditEvent, ChangeRecord, Registration, SisExport, TransitionLog
from workflow.services import _apply_each, audit_record

CHANGES = "changes.csv"
CHANGES_COLUMNS = (
    "record_type",
    "record_id",
    "field",
    "old_value",
    "new_value",
    "registration",
    "approved_by",
    "approved_at",
)
# The record types that are rows of users.csv (their record_id is the user's sourcedId);
# students also get their demographics.csv row.
GUARDIAN_TYPES = {"guardian"}
STUDENT_TYPES = {"student", "enrollment"}
# The OneRoster files of the bundle, which hold only the records concerned.
DELTA_FILES = (fmt.USERS, fmt.DEMOGRAPHICS)


def _start_of(since: datetime.date | None) -> datetime.datetime | None:
    """The first moment of ``since`` in the district's time zone."""
    if since is None:
        return None
    return timezone.make_aware(datetime.datetime.combine(since, datetime.time.min))


def _timestamp(moment: datetime.datetime) -> str:
    """ISO 8601 in UTC, as OneRoster writes ``dateLastModified``."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- what is waiting ---------------------------------------------------------------------


def changes_pending(*, since: datetime.date | None = None) -> QuerySet[ChangeRecord]:
    """Change records not exported yet (approved on or after ``since``, if given)."""
    changes = ChangeRecord.objects.filter(export__isnull=True)
    start = _start_of(since)
    if start is not None:
        changes = changes.filter(approved_at__gte=start)
    return changes


def registrations_pending(*, since: datetime.date | None = None) -> QuerySet[Registration]:
    """The approved registrations the next export moves to exported. With ``since``,
    those approved since then: none of their changes is older, and they have a change
    to export or were approved (their last update) since."""
    approved = Registration.objects.filter(state=Registration.State.APPROVED)
    start = _start_of(since)
    if start is None:
        return approved
    pending = ChangeRecord.objects.filter(registration=OuterRef("pk"), export__isnull=True)
    return approved.exclude(Exists(pending.filter(approved_at__lt=start))).filter(
        Exists(pending.filter(approved_at__gte=start)) | Q(updated_at__gte=start)
    )


@dataclass
class PendingExport:
    """What an export made now would hold."""

    changes_by_type: dict[str, int]
    registrations: int

    @property
    def changes(self) -> int:
        return sum(self.changes_by_type.values())


def sis_export_pending() -> PendingExport:
    """Pending changes by record type, and the registrations they would export: two
    queries."""
    by_type = (
        changes_pending().values_list("record_type").annotate(n=Count("pk")).order_by("record_type")
    )
    return PendingExport(
        changes_by_type=dict(by_type), registrations=registrations_pending().count()
    )


def sis_exports_recent(*, limit: int = 10) -> list[SisExport]:
    return list(
        SisExport.objects.select_related("created_by").order_by("-created_at", "-pk")[:limit]
    )


# -- making an export --------------------------------------------------------------------


def sis_export_create(
    *, actor: Any = None, actor_label: str = "", since: datetime.date | None = None
) -> SisExport | None:
    """Claim every change not yet exported (approved on or after ``since``, if given)
    for a new export, and move the approved registrations approved → exported, with
    their log rows and an audit row, in one transaction.

    With nothing to export nothing changes: the audit row says an empty export was
    made, and None is returned (its files hold only their headers).
    """
    user = actor if actor is not None and actor.is_authenticated else None
    detail: dict[str, Any] = {"since": since.isoformat() if since else None}
    with transaction.atomic():
        registrations = list(registrations_pending(since=since).select_for_update().order_by("pk"))
        pending = changes_pending(since=since)
        if registrations or pending.exists():
            export = SisExport.objects.create(created_by=user, actor_label=actor_label[:150])
            # Compare-and-set: a concurrent export claims each change at most once.
            export.changes = pending.update(export=export)
            export.registrations = len(registrations)
            export.save(update_fields=["changes", "registrations"])
            logs: list[TransitionLog] = []
            _apply_each(
                registrations,
                "export",
                actor=user,
                note=lambda _registration: f"SIS export {export.pk}",
                logs=logs,
            )
            for log in logs:
                log.actor_label = actor_label[:150]
            TransitionLog.objects.bulk_create(logs)
            audit_record(
                action=AuditEvent.Action.EXPORT,
                obj=export,
                actor=user,
                actor_label=actor_label,
                detail={
                    **detail,
                    "changes": export.changes,
                    "registrations": export.registrations,
                },
            )
            return export
    audit_record(
        action=AuditEvent.Action.EXPORT,
        object_type=SisExport._meta.label_lower,
        actor=user,
        actor_label=actor_label,
        detail={**detail, "changes": 0, "registrations": 0},
    )
    return None


# -- writing its files -------------------------------------------------------------------


def sis_export_write(*, export: SisExport | None, folder: Path) -> exporter.ExportReport:
    """Write the files of ``export`` into ``folder`` (with None, the files of an empty
    export: headers only). UTF-8, Windows line endings, as ``export_roster``."""
    folder.mkdir(parents=True, exist_ok=True)
    report = exporter.ExportReport(folder=folder)
    writer = exporter._Writer(folder, report)
    changes = (
        list(
            ChangeRecord.objects.filter(export=export)
            .select_related("approved_by")
            .order_by("approved_at", "pk")
        )
        if export is not None
        else []
    )
    # Each user's last change (the changes are in order), for dateLastModified.
    modified: dict[str, datetime.datetime] = {}
    students: set[str] = set()
    for change in changes:
        if change.record_type in GUARDIAN_TYPES | STUDENT_TYPES:
            modified[change.record_id] = change.approved_at
        if change.record_type in STUDENT_TYPES:
            students.add(change.record_id)

    writer.write_rows(fmt.MANIFEST, fmt.MANIFEST_COLUMNS, _manifest())
    users: Iterable[dict[str, Any]] = []
    demographics: Iterable[dict[str, Any]] = []
    if modified:
        schools = dict(School.objects.values_list("pk", "sourced_id"))
        users = (row for row in exporter._users(schools) if row["sourcedId"] in modified)
        demographics = (row for row in exporter._demographics() if row["sourcedId"] in students)
    writer.write(fmt.USERS, _delta(users, modified))
    writer.write(fmt.DEMOGRAPHICS, _delta(demographics, modified))
    writer.write_rows(CHANGES, CHANGES_COLUMNS, (_change_row(change) for change in changes))
    return report


def sis_export_zip(*, export: SisExport | None) -> bytes:
    """The export's files in one zip archive, at its top level."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="sis-export-") as folder:
        report = sis_export_write(export=export, folder=Path(folder))
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in report.rows:
                archive.write(Path(folder) / name, arcname=name)
    return buffer.getvalue()


def _manifest() -> Iterator[dict[str, str]]:
    """A delta bundle: users and demographics hold only the records concerned; the
    other OneRoster files are absent."""
    yield {"propertyName": "manifest.version", "value": "1.0"}
    yield {"propertyName": "oneroster.version", "value": "1.1"}
    delta = {f.manifest_key for f in DELTA_FILES}
    absent = {f.manifest_key for f in fmt.FILES if f.oneroster} - delta
    absent |= {f"file.{name}" for name in fmt.UNUSED_ONEROSTER_FILES}
    for key in sorted(delta | absent):
        yield {"propertyName": key, "value": "delta" if key in delta else "absent"}
    yield {"propertyName": "source.systemName", "value": exporter.SYSTEM_NAME}
    yield {"propertyName": "source.systemCode", "value": ""}


def _delta(
    rows: Iterable[dict[str, Any]], modified: dict[str, datetime.datetime]
) -> Iterator[dict[str, Any]]:
    """Rows of a delta file: each active, with the time of its last change."""
    for row in rows:
        yield {
            **row,
            "status": "active",
            "dateLastModified": _timestamp(modified[row["sourcedId"]]),
        }


def _change_row(change: ChangeRecord) -> dict[str, str]:
    return {
        "record_type": change.record_type,
        "record_id": change.record_id,
        "field": change.field,
        "old_value": change.old_value,
        "new_value": change.new_value,
        "registration": str(change.registration_id or ""),
        "approved_by": change.approved_by.email if change.approved_by else "",
        "approved_at": _timestamp(change.approved_at),
    }
