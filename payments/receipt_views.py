"""The PDF receipt of a paid checkout, as a download: to a guardian of the household,
and to finance and the registrar (each read audited)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from documents.services import receipt_number, receipt_render
from payments.models import Checkout
from registration import selectors
from registration.access import has_totp, log_refusal
from registration.models import HouseholdGuardian, StaffProfile
from workflow.services import audit_record

# Staff who may read any household's receipts (both see every school).
RECEIPT_STAFF_ROLES = {StaffProfile.Role.FINANCE, StaffProfile.Role.REGISTRAR}


def _reads_every_receipt(user: object) -> bool:
    if getattr(user, "is_superuser", False):
        return True
    profile = selectors.staff_profile_for(user)  # type: ignore[arg-type]
    return profile is not None and profile.enabled and profile.role in RECEIPT_STAFF_ROLES


@login_required
def receipt_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The receipt of checkout ``pk`` as a PDF attachment. Anyone but a guardian of
    its household or finance staff gets 404 (logged); so does a checkout not paid."""
    staff = _reads_every_receipt(request.user)
    if staff and not has_totp(request.user):
        # As for every staff page: a second factor before any household's records.
        target = reverse("mfa_activate_totp")
        return redirect(f"{target}?{urlencode({'next': request.path})}")
    checkout = Checkout.objects.select_related("household").filter(pk=pk).first()
    if not staff:
        guardian = selectors.guardian_for(request.user)  # type: ignore[arg-type]
        if (
            checkout is None
            or guardian is None
            or not HouseholdGuardian.objects.filter(
                household_id=checkout.household_id, guardian=guardian
            ).exists()
        ):
            log_refusal(request, "receipt of another household")
            raise Http404
    if checkout is None or checkout.state != Checkout.State.PAID:
        raise Http404
    # Rendered when the payment was confirmed; rendered now if that has not run yet.
    receipt = receipt_render(checkout=checkout)
    if staff:
        audit_record(
            action="view",
            obj=receipt,
            request=request,
            detail={"checkout": checkout.pk, "household": checkout.household_id},
        )
        # The receipt names the children it was paid for: a read of each child.
        children = {
            line.student_id: line.student for line in checkout.lines.select_related("student")
        }
        for _pk, student in sorted(children.items()):
            audit_record(
                action="view",
                obj=student,
                request=request,
                detail={"via": "documents.receipt", "receipt": receipt.pk},
            )
    filename = _("receipt-%(number)s.pdf") % {"number": receipt_number(checkout)}
    response = FileResponse(
        receipt.pdf.open("rb"),
        as_attachment=True,
        filename=filename,
        content_type="application/pdf",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response
