"""How long the product keeps what it no longer needs, and the purge that enforces it.

- Proofs of residence (the uploaded files and their rows): ``RETENTION_PROOF_DAYS``
  after their address change was verified, rejected or cancelled. The decision, who
  made it and which proofs staff saw stay on the request.
- Wizard drafts (``RegistrationStep``: everything a family typed, health notes
  included): ``RETENTION_DRAFT_DAYS`` after their campaign closed. What was signed
  is kept as the ``Submission``.
- Activation codes (hashes) and their failed attempts: ``RETENTION_CODE_DAYS`` after
  they expired, were redeemed or were revoked.
- Outbox messages (``outbox``: ids of the work queued for Celery) and the claims of
  emails sent once: ``RETENTION_OUTBOX_DAYS`` after they were dispatched or made.

``purge_expired`` removes them in one transaction, deletes proof files from private
storage only once that transaction committed, writes one audit row per kind of
record removed and logs the counts. Running it again removes nothing more.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from outbox.services import outbox_purge
from registration.models import ActivationCode
from workflow.models import AddressChangeRequest, AddressProof, AuditEvent, RegistrationStep
from workflow.services import audit_record

log = logging.getLogger("workflow.retention")

PURGE_ACTOR = "purge_expired"
CLOSED_REQUESTS = (
    AddressChangeRequest.State.VERIFIED,
    AddressChangeRequest.State.REJECTED,
    AddressChangeRequest.State.CANCELLED,
)
SPENT_CODES = (
    ActivationCode.State.REDEEMED,
    ActivationCode.State.REVOKED,
    ActivationCode.State.EXPIRED,
)


@dataclass
class PurgeReport:
    proofs: int = 0
    proof_requests: int = 0
    drafts: int = 0
    codes: int = 0
    outbox: int = 0
    files: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"removed {self.proofs} proofs of residence of {self.proof_requests} closed "
            f"address changes, {self.drafts} wizard drafts, {self.codes} activation codes "
            f"and {self.outbox} outbox rows"
        )


def _cutoff(days: int, now: datetime.datetime) -> datetime.datetime:
    return now - datetime.timedelta(days=days)


def purge_expired(*, now: datetime.datetime | None = None, dry_run: bool = False) -> PurgeReport:
    """Remove what the retention settings say has been kept long enough; with
    ``dry_run``, only count it."""
    now = now or timezone.now()
    report = PurgeReport()
    proofs = AddressProof.objects.filter(
        request__state__in=CLOSED_REQUESTS,
        request__decided_at__lt=_cutoff(settings.RETENTION_PROOF_DAYS, now),
    )
    drafts = RegistrationStep.objects.filter(
        registration__campaign__closes_on__lt=_cutoff(settings.RETENTION_DRAFT_DAYS, now).date()
    )
    spent_before = _cutoff(settings.RETENTION_CODE_DAYS, now)
    codes = ActivationCode.objects.filter(
        Q(state__in=SPENT_CODES, updated_at__lt=spent_before)
        | Q(state=ActivationCode.State.ISSUED, expires_at__lt=spent_before)
    )
    with transaction.atomic():
        found = list(proofs.select_for_update().values_list("pk", "request_id", "file"))
        report.proofs = len(found)
        report.proof_requests = len({request for _pk, request, _file in found})
        report.files = [name for _pk, _request, name in found if name]
        report.drafts = drafts.count()
        report.codes = codes.count()
        outbox_before = _cutoff(settings.RETENTION_OUTBOX_DAYS, now)
        report.outbox = outbox_purge(before=outbox_before, dry_run=True)
        if dry_run:
            transaction.set_rollback(True)
            return report
        if found:
            AddressProof.objects.filter(pk__in=[pk for pk, _request, _file in found]).delete()
            # A file goes only once the rows are gone for good.
            files = report.files

            def files_delete() -> None:
                _files_delete(files)

            transaction.on_commit(files_delete, robust=True)
        if report.drafts:
            drafts.delete()
        if report.codes:
            codes.delete()
        if report.outbox:
            outbox_purge(before=outbox_before)
        for object_type, count in (
            ("workflow.addressproof", report.proofs),
            ("workflow.registrationstep", report.drafts),
            ("registration.activationcode", report.codes),
            ("outbox.outboxmessage", report.outbox),
        ):
            if count:
                audit_record(
                    action=AuditEvent.Action.DELETE,
                    object_type=object_type,
                    actor_label=PURGE_ACTOR,
                    detail={"removed": count, "reason": "retention period over"},
                )
    log.info("purge_expired: %s", report)
    return report


def _files_delete(names: list[str]) -> None:
    storage = AddressProof._meta.get_field("file").storage
    for name in names:
        storage.delete(name)
