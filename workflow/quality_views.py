"""The registrar's data quality page: records the import or the families left
broken, each linked to where it is fixed."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from registration.access import REGISTRAR, staff_required
from workflow.quality import LIST_LIMIT, quality_current
from workflow.services import audit_record


@staff_required(REGISTRAR)
def quality_overview(request: HttpRequest) -> HttpResponse:
    quality, checked_at = quality_current()
    shown = {
        str(student.pk)
        for student in (
            *quality.students_without_guardian.rows,
            *quality.students_duplicated.rows,
        )
    }
    audit_record(
        action="list",
        object_type="registration.student",
        request=request,
        detail={
            "page": "data quality",
            "student_ids": sorted(shown, key=int),
            "totals": {
                "households_unreachable": quality.households_unreachable.total,
                "students_without_guardian": quality.students_without_guardian.total,
                "guardians_bounced": quality.guardians_bounced.total,
                "guardians_opted_out": quality.guardians_opted_out.total,
                "guardians_duplicated": quality.guardians_duplicated.total,
                "students_duplicated": quality.students_duplicated.total,
            },
        },
    )
    return render(
        request,
        "staff/quality/overview.html",
        {
            "quality": quality,
            "limit": LIST_LIMIT,
            "checked_at": checked_at,
            "max_age_minutes": max(settings.SUMMARY_MAX_AGE_SECONDS // 60, 1),
        },
    )
