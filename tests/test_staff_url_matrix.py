"""Who may open every staff URL: the answer each role gets, for every URL pattern under
``/staff/`` that the project's resolver knows.

A new staff URL fails ``test_every_staff_url_is_in_the_matrix`` until it is added
to ``MATRIX`` with the answer each role should get. Pages are fetched with GET and
actions with POST; an action must also answer 405 to a GET from a role allowed to
post. URL arguments are filled from one small world: the running campaign, the
submitted registration of household hh-001 (whose children attend office staff's
school) with an address change request and its proof.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from registration.models import Guardian, Household, Student
from tests.conftest import sign_in
from workflow.models import (
    Acknowledgement,
    AddressChangeRequest,
    AddressProof,
    Campaign,
    EnrollmentDecision,
    Registration,
    SisExport,
)
from workflow.services import (
    Signature,
    address_change_save,
    registration_step_save,
    registration_submit,
)

ROLES = ("office", "other_office", "registrar", "finance", "teacher", "guardian", "anonymous")
ROLE_FIXTURES = {
    "office": "office_user",
    "other_office": "other_school_office_user",
    "registrar": "registrar_user",
    "finance": "finance_user",
    "teacher": "teacher_user",
    "guardian": "guardian_user",
}
LOGIN = "/accounts/login/"


# -- the URLs ----------------------------------------------------------------------------


def _walk(patterns: list[Any], prefix: str, namespace: str) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            found += _walk(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern):
            name = pattern.name
            if name and namespace:
                name = f"{namespace}:{name}"
            found.append((route, name))
    return found


def staff_routes() -> list[tuple[str, str | None]]:
    """(route, name) of every URL pattern under ``staff/``, nested includes walked."""
    return [
        (route, name)
        for route, name in _walk(get_resolver().url_patterns, "", "")
        if route.startswith("staff/")
    ]


# -- the world the URLs are filled from -----------------------------------------------------


@dataclass
class World:
    campaign: Campaign
    acknowledgement: Acknowledgement
    registration: Registration
    household: Household
    guardian: Guardian
    student: Student
    address_request: AddressChangeRequest
    proof: AddressProof
    sis_export: SisExport


def _world(campaign: Campaign, guardian_user: Any, registrar_user: Any) -> World:
    """hh-001's registration, submitted by José with a move to a new address and a
    proof of it: an address request awaiting the family's visit. And one (empty)
    export to the SIS."""
    registration = Registration.objects.get(campaign=campaign, household__sourced_id="hh-001")
    guardian = Guardian.objects.get(user=guardian_user)

    def save(step: str, answers: dict[str, Any]) -> None:
        registration_step_save(
            registration=registration,
            step=step,
            data={},
            answers=answers,
            unchanged=False,
            user=guardian_user,
        )

    address_change_save(
        registration=registration,
        guardian=guardian,
        data={},
        answers={
            "moved": True,
            "street1": "5 New Rd",
            "street2": "",
            "city": "Riverside",
            "state": "CA",
            "postal_code": "95210",
        },
        unchanged=False,
        uploads=[SimpleUploadedFile("lease.pdf", b"%PDF-1.4 lease", "application/pdf")],
        remove_proof_ids=[],
        user=guardian_user,
    )
    for decision in EnrollmentDecision.objects.filter(registration=registration):
        save(
            f"child-{decision.student_id}",
            {
                "student": decision.student_id,
                "read_only": False,
                "returning": True,
                "next_school": decision.student.school_id,
                "next_grade": "05",
                "leaving_reason": "",
                "leaving_destination": "",
                "health": {"allergies": "", "medications": "", "conditions": ""},
                "consents": {},
            },
        )
    save(
        "acknowledgements",
        {"accepted": list(campaign.acknowledgements.values_list("pk", flat=True))},
    )
    registration_submit(
        registration=registration,
        signature=Signature(
            guardian=guardian,
            signed_name=guardian.full_name,
            ip_address="127.0.0.1",
            user_agent="test",
            language="en",
        ),
        content={
            "sections": [
                {
                    "step": "acknowledgements",
                    "title": "Documents",
                    "rows": [{"label": "Family handbook", "after": "Accepted", "changed": False}],
                }
            ]
        },
        user=guardian_user,
    )
    registration.refresh_from_db()
    assert registration.state == Registration.State.SUBMITTED
    address_request = AddressChangeRequest.objects.get(registration=registration)
    return World(
        campaign=campaign,
        acknowledgement=campaign.acknowledgements.get(key="handbook", is_current=True),
        registration=registration,
        household=registration.household,
        guardian=guardian,
        student=Student.objects.get(sourced_id="stu-001"),
        address_request=address_request,
        proof=address_request.proofs.get(),
        sis_export=SisExport.objects.create(created_by=registrar_user),
    )


# -- the matrix ------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    method: str
    answers: dict[str, int]
    kwargs: Callable[[World], dict[str, Any]] = lambda world: {}
    data: Callable[[World], dict[str, Any]] = lambda world: {}


def answers(
    office: int,
    other_office: int,
    registrar: int,
    finance: int,
    teacher: int,
    guardian: int,
    anonymous: int = 302,
) -> dict[str, int]:
    return dict(
        zip(
            ROLES,
            (office, other_office, registrar, finance, teacher, guardian, anonymous),
            strict=True,
        )
    )


ANY_STAFF_PAGE = answers(200, 200, 200, 200, 200, 403)
REGISTRAR_PAGE = answers(403, 403, 200, 403, 403, 403)
REGISTRAR_ACTION = answers(403, 403, 302, 403, 403, 403)
# Office staff of the family's school and registrars; other schools are told nothing.
SCHOOL_PAGE = answers(200, 404, 200, 403, 403, 403)
SCHOOL_ACTION = answers(302, 404, 302, 403, 403, 403)
# A queue of the user's own schools: office staff and registrars.
SCHOOL_QUEUE = answers(200, 200, 200, 403, 403, 403)


def _campaign(world: World) -> dict[str, Any]:
    return {"pk": world.campaign.pk}


def _acknowledgement(world: World) -> dict[str, Any]:
    return {"pk": world.campaign.pk, "ack_pk": world.acknowledgement.pk}


def _guardian(world: World) -> dict[str, Any]:
    return {"pk": world.guardian.pk}


def _custody(world: World) -> dict[str, Any]:
    """José's link to Mateo (stu-001, at the office's school)."""
    return {"pk": _custody_link(world).pk}


def _custody_note(world: World) -> dict[str, Any]:
    return {f"custody-{_custody_link(world).pk}-note": "Lives with both parents."}


def _custody_link(world: World) -> Any:
    from registration.models import StudentGuardian

    return StudentGuardian.objects.get(guardian=world.guardian, student=world.student)


def _address(world: World) -> dict[str, Any]:
    return {"pk": world.address_request.pk}


def _proof(world: World) -> dict[str, Any]:
    return {"pk": world.address_request.pk, "proof_pk": world.proof.pk}


def _registration(world: World) -> dict[str, Any]:
    return {"pk": world.registration.pk}


def _sis_export(world: World) -> dict[str, Any]:
    return {"pk": world.sis_export.pk}


# Fees and payments: rows made the first time a URL needs them (the same ones for every
# URL of a test). Daniel (the teacher) teaches Math 7, where hh-001's Mateo is.
FINANCE_PAGE = answers(403, 403, 200, 200, 403, 403)
FINANCE_ACTION = answers(403, 403, 302, 302, 403, 403)
# Refunds and changes to the catalog: finance only (registrars read the pages).
FINANCE_ONLY_PAGE = answers(403, 403, 403, 200, 403, 403)
FINANCE_ONLY_ACTION = answers(403, 403, 403, 302, 403, 403)
TRIP_PAGE = answers(403, 403, 200, 200, 200, 403)
TEACHER_PAGE = answers(403, 403, 403, 403, 200, 403)
TEACHER_ACTION = answers(403, 403, 403, 403, 302, 403)


def _fee(world: World) -> dict[str, Any]:
    from payments.models import Fee

    fee, _ = Fee.objects.get_or_create(
        kind=Fee.Kind.OPTIONAL, title="Yearbook", defaults={"amount_cents": 3500}
    )
    return {"pk": fee.pk}


def _trip(world: World) -> dict[str, Any]:
    import datetime

    from payments.models import Fee
    from registration.models import ClassSection

    trip, _ = Fee.objects.get_or_create(
        kind=Fee.Kind.FIELD_TRIP,
        title="Science museum",
        defaults={
            "amount_cents": 1850,
            "section": ClassSection.objects.get(sourced_id="cls-math-7"),
            "event_date": world.campaign.closes_on,
            "deadline": world.campaign.closes_on - datetime.timedelta(days=1),
        },
    )
    return {"pk": trip.pk}


def _paid_checkout(world: World) -> Any:
    from django.utils import timezone

    from payments.models import Checkout, CheckoutLine, Fee, Refund

    checkout = Checkout.objects.filter(household=world.household).first()
    if checkout is None:
        checkout = Checkout.objects.create(
            household=world.household,
            created_by=world.guardian.user,
            state=Checkout.State.PAID,
            total_cents=3500,
            expires_at=timezone.now(),
            paid_at=timezone.now(),
            stripe_payment_intent="pi_matrix",
        )
        line = CheckoutLine.objects.create(
            checkout=checkout,
            student=world.student,
            fee=Fee.objects.get(pk=_fee(world)["pk"]),
            amount_cents=3500,
            description="Yearbook",
        )
        Refund.objects.create(
            checkout=checkout, line=line, amount_cents=500, stripe_refund_id="re_matrix"
        )
    return checkout


def _checkout(world: World) -> dict[str, Any]:
    return {"pk": _paid_checkout(world).pk}


def _checkout_line(world: World) -> dict[str, Any]:
    checkout = _paid_checkout(world)
    return {"pk": checkout.pk, "line_pk": checkout.lines.get().pk}


def _refund(world: World) -> dict[str, Any]:
    return {"pk": _paid_checkout(world).refunds.get().pk}


def _household(world: World) -> dict[str, Any]:
    return {"pk": world.household.pk}


def _mismatch_item(world: World) -> Any:
    """A reconciled payout with one charge the ledger lacks (hh-001's)."""
    from django.utils import timezone

    from finance.models import Payout, ReconciliationItem

    payout, _ = Payout.objects.get_or_create(
        stripe_payout_id="po_matrix",
        defaults={
            "stripe_status": "paid",
            "amount_cents": 1800,
            "stripe_created_at": timezone.now(),
            "reconciled_at": timezone.now(),
        },
    )
    item, _ = ReconciliationItem.objects.get_or_create(
        key="txn_matrix",
        defaults={
            "payout": payout,
            "kind": ReconciliationItem.Kind.STRIPE_ONLY,
            "mismatch_kind": ReconciliationItem.Kind.STRIPE_ONLY,
            "transaction_type": "charge",
            "stripe_payment_intent": "pi_matrix_unknown",
            "amount_cents": 1800,
            "household": world.household,
        },
    )
    return item


def _payout(world: World) -> dict[str, Any]:
    return {"pk": _mismatch_item(world).payout_id}


def _mismatch(world: World) -> dict[str, Any]:
    return {"pk": _mismatch_item(world).pk}


MATRIX: dict[str, Entry] = {
    "staff_home": Entry("GET", ANY_STAFF_PAGE),
    "staff_guardians": Entry("GET", SCHOOL_QUEUE),
    "staff_guardian": Entry("GET", SCHOOL_PAGE, _guardian),
    # José has an account, so both answer with a redirect and a message, issuing nothing.
    "staff_guardian_letter": Entry("POST", SCHOOL_ACTION, _guardian),
    "staff_guardian_email_code": Entry("POST", SCHOOL_ACTION, _guardian),
    "staff_custody_note": Entry("POST", SCHOOL_ACTION, _custody, _custody_note),
    "staff_activation": Entry("GET", REGISTRAR_PAGE),
    "staff_activation_resend": Entry("POST", REGISTRAR_ACTION),
    "staff_campaigns": Entry("GET", REGISTRAR_PAGE),
    "staff_campaign_create": Entry("GET", REGISTRAR_PAGE),
    "staff_campaign": Entry("GET", REGISTRAR_PAGE, _campaign),
    "staff_campaign_edit": Entry("GET", REGISTRAR_PAGE, _campaign),
    "staff_campaign_open": Entry("POST", REGISTRAR_ACTION, _campaign),
    "staff_acknowledgement_create": Entry("GET", REGISTRAR_PAGE, _campaign),
    "staff_acknowledgement_edit": Entry("GET", REGISTRAR_PAGE, _acknowledgement),
    "staff_acknowledgement_retire": Entry("POST", REGISTRAR_ACTION, _acknowledgement),
    "staff_quality": Entry("GET", REGISTRAR_PAGE),
    "staff_audit": Entry("GET", REGISTRAR_PAGE),
    # Address changes: office staff of the family's school and registrars. Queues and
    # schedules list only the user's own schools, so other schools' office staff get
    # a page (without this family).
    "staff_addresses": Entry("GET", SCHOOL_QUEUE),
    "staff_address_visits": Entry("GET", SCHOOL_QUEUE),
    "staff_address_schedule": Entry("GET", SCHOOL_QUEUE),
    "staff_address": Entry("GET", SCHOOL_PAGE, _address),
    "staff_address_proof": Entry("GET", SCHOOL_PAGE, _proof),
    "staff_address_visit_record": Entry(
        "POST", SCHOOL_ACTION, _address, lambda world: {"proofs_seen": ["lease", "utility"]}
    ),
    "staff_address_verify": Entry("POST", SCHOOL_ACTION, _address),
    "staff_address_reject": Entry(
        "POST", SCHOOL_ACTION, _address, lambda world: {"reason": "The lease names someone else."}
    ),
    # Registration review, and the export to the SIS (registrars only).
    "staff_registrations": Entry("GET", SCHOOL_QUEUE),
    "staff_registration": Entry("GET", SCHOOL_PAGE, _registration),
    "staff_registration_approve": Entry("POST", SCHOOL_ACTION, _registration),
    "staff_registration_return": Entry(
        "POST",
        SCHOOL_ACTION,
        _registration,
        lambda world: {"comment": "Please check the phone number.", "step": "acknowledgements"},
    ),
    "staff_registration_export": Entry("GET", REGISTRAR_PAGE),
    "staff_registration_export_download": Entry("GET", REGISTRAR_PAGE, _sis_export),
    "staff_reminders": Entry("GET", REGISTRAR_PAGE),
    # Field trips: teachers of the class, and registrars and finance (read only).
    "staff_field_trips": Entry("GET", TRIP_PAGE),
    "staff_field_trip_create": Entry("GET", TEACHER_PAGE),
    "staff_field_trip": Entry("GET", TRIP_PAGE, _trip),
    "staff_field_trip_cancel": Entry("POST", TEACHER_ACTION, _trip),
    # The fee catalog, meal eligibility, payments and refunds: finance and registrars.
    "staff_fees": Entry("GET", FINANCE_PAGE),
    "staff_fee_create": Entry("GET", FINANCE_PAGE, lambda world: {"kind": "optional"}),
    "staff_fee_edit": Entry("GET", FINANCE_PAGE, _fee),
    "staff_fee_deactivate": Entry("POST", FINANCE_ONLY_ACTION, _fee),
    "staff_meal_eligibility": Entry("GET", FINANCE_PAGE),
    "staff_payments": Entry("GET", FINANCE_PAGE),
    "staff_payment": Entry("GET", FINANCE_PAGE, _checkout),
    # An empty form: the page again with its errors, and nothing sent to Stripe.
    "staff_payment_refund": Entry("POST", FINANCE_ONLY_PAGE, _checkout_line),
    # A refund Stripe already has: nothing is sent, back to the payment.
    "staff_payment_refund_send": Entry("POST", FINANCE_ONLY_ACTION, _refund),
    "staff_household_payments": Entry("GET", FINANCE_PAGE, _household),
    # Reconciliation and finance's reports: finance and registrars.
    "staff_finance": Entry("GET", FINANCE_PAGE),
    "staff_finance_payout": Entry("GET", FINANCE_PAGE, _payout),
    "staff_finance_mismatches": Entry("GET", FINANCE_PAGE),
    "staff_finance_mismatch": Entry("GET", FINANCE_PAGE, _mismatch),
    "staff_finance_mismatch_explain": Entry(
        "POST", FINANCE_ACTION, _mismatch, lambda world: {"note": "Paid at the office."}
    ),
    "staff_finance_collections": Entry("GET", FINANCE_PAGE),
    "staff_finance_outstanding": Entry("GET", FINANCE_PAGE),
    "staff_finance_refunds": Entry("GET", FINANCE_PAGE),
    "staff_finance_summary": Entry("GET", FINANCE_PAGE),
}


# -- the tests ---------------------------------------------------------------------------


def test_every_staff_url_is_in_the_matrix():
    names = [name for _, name in staff_routes()]
    assert None not in names, [route for route, name in staff_routes() if name is None]
    missing = sorted(set(names) - set(MATRIX))
    stale = sorted(set(MATRIX) - set(names))
    assert not missing, f"staff URLs with no expected answers in MATRIX: {missing}"
    assert not stale, f"MATRIX names URLs that no longer exist: {stale}"


def test_the_walk_finds_nested_includes():
    routes = dict((name, route) for route, name in staff_routes())
    assert routes["staff_campaign"] == "staff/campaigns/<int:pk>/"
    assert routes["staff_home"] == "staff/"


def _request(client: Client, method: str, url: str, data: dict[str, Any]) -> Any:
    """One request whose writes are rolled back, so that every URL sees the same world."""
    with transaction.atomic():
        response = client.post(url, data) if method == "POST" else client.get(url)
        transaction.set_rollback(True)
    if response.streaming:  # a download: its status is all the matrix looks at
        # Read to the end: the test client then closes it without closing the database
        # connection (``response.close()`` alone would, on PostgreSQL, mid-test).
        b"".join(response.streaming_content)
    return response


def _forms_that_delete(html: str) -> list[str]:
    return [a for a in re.findall(r'<form[^>]*action="([^"]*)"', html) if "delete" in a]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_answer_from_every_staff_url(
    request, role, campaign, guardian_user, registrar_user
):
    world = _world(campaign, guardian_user, registrar_user)
    client = Client()
    if role != "anonymous":
        sign_in(client, request.getfixturevalue(ROLE_FIXTURES[role]))

    wrong = []
    for name, entry in sorted(MATRIX.items()):
        url = reverse(name, kwargs=entry.kwargs(world))
        expected = entry.answers[role]
        response = _request(client, entry.method, url, entry.data(world))
        if response.status_code != expected:
            wrong.append(
                f"{entry.method} {url} ({name}): {response.status_code}, expected {expected}"
            )
            continue
        if role == "anonymous" and expected == 302 and not response["Location"].startswith(LOGIN):
            wrong.append(f"{entry.method} {url} ({name}): redirects to {response['Location']}")
        html = response.get("Content-Type", "").startswith("text/html")
        if expected == 200 and html and _forms_that_delete(response.content.decode()):
            wrong.append(f"{url} ({name}) offers deletion")
        allowed = expected not in (403, 404) and role != "anonymous"
        if entry.method == "POST" and allowed:
            answer = _request(client, "GET", url, {}).status_code
            if answer != 405:
                wrong.append(f"GET {url} ({name}): {answer}, expected 405 for a POST-only URL")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)
