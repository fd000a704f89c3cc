"""The staff dashboard's counts: written in the background, read in a few queries.

Counting a campaign's households by state, grade and school takes a few grouped
queries over every enrollment decision of the district: well under a second for a
small district, seconds for a million students. So ``dashboard_count`` counts the
whole district at once and stores the result as ``DashboardCount`` rows (per grade
of each school, per school, and for the district), and the dashboard reads those
rows (``workflow.selectors.registration_dashboard``). ``dashboard_current`` is what
the page calls: rows never counted are counted at once; rows older than
``settings.DASHBOARD_MAX_AGE_SECONDS`` are shown as they are while a Celery task
counts them again (one task at a time per campaign); a maximum age of 0 counts on
every view.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from payments.models import Fee, LedgerEntry
from payments.selectors import SETTLING_KINDS
from registration.models import Student, StudentGuardian
from workflow.models import (
    AddressChangeRequest,
    Campaign,
    DashboardCount,
    EnrollmentDecision,
    Registration,
)
from workflow.selectors import Dashboard, registration_dashboard

log = logging.getLogger("workflow")

_GRADE, _SCHOOL, _ALL = (
    DashboardCount.Level.GRADE,
    DashboardCount.Level.SCHOOL,
    DashboardCount.Level.DISTRICT,
)
Key = tuple[int, int | None, str]


def _by_school_and_grade(
    queryset: QuerySet[Any], school: str, grade: str, aggregates: dict[str, Any]
) -> dict[Key, dict[str, int]]:
    """``aggregates`` over ``queryset`` per school and grade, per school, and over
    everything, in one query (three grouped SELECTs under UNION ALL): distinct counts
    cannot be added up, so each level is counted on its own. Keyed by (level, school
    id, grade)."""
    levels = [
        (_GRADE, F(school), F(grade)),
        (_SCHOOL, F(school), Value("", output_field=CharField())),
        (_ALL, Value(None, output_field=BigIntegerField()), Value("", output_field=CharField())),
    ]
    parts = [
        queryset.annotate(
            row_level=Value(int(level), output_field=IntegerField()), row_school=s, row_grade=g
        )
        .values("row_level", "row_school", "row_grade")
        .annotate(**aggregates)
        .order_by()
        for level, s, g in levels
    ]
    rows = parts[0].union(*parts[1:], all=True)
    return {
        (row.pop("row_level"), row.pop("row_school"), row.pop("row_grade")): row for row in rows
    }


def _registrations(campaign: Campaign) -> QuerySet[Any]:
    """A child's decision links them to the registration of their primary household,
    the one that decides for them: households are counted through their children,
    with no detour through the households table. Withdrawn registrations are left
    out."""
    return EnrollmentDecision.objects.filter(
        campaign=campaign, registration__isnull=False, student__enabled=True
    ).exclude(registration__state=Registration.State.WITHDRAWN)


def _children_with_fees_unpaid(campaign: Campaign) -> QuerySet[Any] | None:
    """Enabled children with a required fee of the campaign not yet paid or waived
    (net of refunds), or None when the campaign has no required fee."""
    fees = list(Fee.objects.filter(kind=Fee.Kind.REQUIRED, campaign=campaign, active=True))
    if not fees:
        return None
    children = Student.objects.filter(enabled=True)
    unpaid = Q()
    for fee in fees:
        settled = (
            LedgerEntry.objects.filter(student=OuterRef("pk"), fee=fee, kind__in=SETTLING_KINDS)
            .values("student")
            .annotate(total=Sum("amount_cents"))
            .values("total")
        )
        name = f"settled_{fee.pk}"
        children = children.annotate(**{name: Coalesce(Subquery(settled), 0)})
        # Settling entries are negative: fewer than −amount cents means unpaid.
        owes = Q(**{f"{name}__gt": -(fee.amount_cents or 0)})
        unpaid |= owes if fee.school_id is None else owes & Q(school_id=fee.school_id)
    return children.filter(unpaid)


def dashboard_count(campaign: Campaign) -> int:
    """Count the campaign's dashboard for the whole district and replace its rows, in
    one transaction. Returns the number of rows written."""
    state = Registration.State
    found: dict[Key, dict[str, int]] = {}

    def merge(rows: dict[Key, dict[str, int]]) -> None:
        for key, values in rows.items():
            found.setdefault(key, {}).update(values)

    def households(*states: str) -> Count:
        return Count("registration", distinct=True, filter=Q(registration__state__in=states))

    merge(
        _by_school_and_grade(
            _registrations(campaign),
            "student__school",
            "student__grade",
            {
                "households": Count("registration", distinct=True),
                "not_started": households(state.NOT_STARTED),
                "in_progress": households(state.IN_PROGRESS),
                "submitted": households(state.SUBMITTED),
                "returned": households(state.RETURNED),
                "approved": households(state.APPROVED, state.EXPORTED),
            },
        )
    )
    primary = "household__householdstudent__"
    merge(
        _by_school_and_grade(
            AddressChangeRequest.objects.filter(
                state__in=AddressChangeRequest.OPEN_STATES,
                **{f"{primary}is_primary": True, f"{primary}student__enabled": True},
            ),
            f"{primary}student__school",
            f"{primary}student__grade",
            {"address_requests": Count("household", distinct=True)},
        )
    )
    merge(
        _by_school_and_grade(
            StudentGuardian.objects.filter(student__enabled=True),
            "student__school",
            "student__grade",
            {
                "guardians": Count("guardian", distinct=True),
                "guardians_activated": Count(
                    "guardian", distinct=True, filter=Q(guardian__user__isnull=False)
                ),
            },
        )
    )
    unpaid = _children_with_fees_unpaid(campaign)
    if unpaid is not None:
        merge(
            _by_school_and_grade(
                unpaid, "school", "grade", {"children_fees_unpaid": Count("pk", distinct=True)}
            )
        )
    now = timezone.now()
    rows = [
        DashboardCount(
            campaign=campaign,
            level=level,
            school_id=school_id,
            grade=grade or "",
            counted_at=now,
            **values,
        )
        for (level, school_id, grade), values in found.items()
    ]
    if not any(row.level == _ALL for row in rows):
        # The district's row says when it was counted, even with nothing to count.
        rows.append(DashboardCount(campaign=campaign, level=_ALL, counted_at=now))
    with transaction.atomic():
        DashboardCount.objects.filter(campaign=campaign).delete()
        DashboardCount.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def _lock_key(campaign: Campaign) -> str:
    return f"dashboard-count-queued:{campaign.pk}"


def dashboard_count_queue(campaign: Campaign) -> bool:
    """Ask a worker to count the campaign's dashboard again, unless one was asked
    within the maximum age already. Returns whether it was asked now."""
    from workflow.tasks import dashboard_count_task

    if not cache.add(_lock_key(campaign), True, timeout=max(settings.DASHBOARD_MAX_AGE_SECONDS, 1)):
        return False
    transaction.on_commit(lambda: dashboard_count_task.delay(campaign.pk), robust=True)
    return True


def dashboard_current(
    user: Any, campaign: Campaign, *, only: Collection[int] | None = None
) -> Dashboard:
    """The dashboard for ``user``, counted at once when it never was (or when the
    maximum age is 0), otherwise as last counted, with a new count queued when the
    rows are older than the maximum age."""
    max_age = settings.DASHBOARD_MAX_AGE_SECONDS
    if max_age <= 0:
        dashboard_count(campaign)
    dashboard = registration_dashboard(user, campaign, only=only)
    if dashboard.counted_at is None:
        dashboard_count(campaign)
        return registration_dashboard(user, campaign, only=only)
    age = (timezone.now() - dashboard.counted_at).total_seconds()
    if max_age > 0 and age > max_age:
        dashboard_count_queue(campaign)
    return dashboard
