"""The confirmation PDF of a household with three children against WeasyPrint
rendering a one-line page.

In a throwaway SQLite database the benchmark imports a small generated district, opens
a campaign (one required and one optional document to accept), picks a household
with exactly three children and has one of its guardians complete the wizard through
HTTP as ``bench/wizard.py`` does (sign in, every step, sign and submit): a real
submission with the content the guardian reviewed. The confirmation is queued, not
rendered (an in-memory broker), so the benchmark renders it itself:

value    = median ms of ``documents.services.confirmation_render`` (the template, the
           PDF and its storage), after a warm-up; it renders once per submission, so
           the stored confirmation is removed between rounds, outside the timing
baseline = median ms of ``documents.rendering.pdf_from_html`` for a one-line page
           (``<html lang="en"><p>…</p></html>``), in the same process
ratio    = baseline ÷ value (the goal: at least 0.33, within 3× of the one-line page)

    python bench/confirmation.py [--quick]
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import (
    ROOT,
    campaign_running,
    child_environment,
    command_line,
    deciding_guardian,
    migrated,
    synthetic_district,
)
from wizard import PASSWORD, Family, complete

HOUSEHOLDS = 40  # enough for several households of three children (about one in eight)
ROUNDS = 11
CHILDREN = 3


def _three_children_family(campaign: Any) -> Any:
    """A household with exactly three children to decide for, and one of its
    guardians with education rights, given a sign-in."""
    from django.db.models import Count

    from registration.services import guardian_account_create
    from workflow.models import Registration

    registrations = (
        Registration.objects.filter(campaign=campaign)
        .annotate(children=Count("decisions"))
        .filter(children=CHILDREN)
        .order_by("pk")
    )
    found = deciding_guardian(registrations)
    if found is not None:
        registration, guardian = found
        email = f"{guardian.sourced_id}@bench.example.org"
        user = guardian_account_create(guardian=guardian, email=email, password=PASSWORD)
        return Family(
            registration_id=registration.pk,
            user_id=user.pk,
            email=email,
            signed_name=f"{guardian.given_name} {guardian.family_name}",
            address="10.0.0.1",
        )
    raise RuntimeError(f"no household of {CHILDREN} children with a guardian who decides")


def _median_ms(seconds: list[float]) -> float:
    return round(1000 * statistics.median(seconds), 1)


def measure(households: int, bundle: Path) -> dict[str, object]:
    """Runs inside a process whose DATABASE_URL names an empty database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from pypdf import PdfReader

    from documents import services as document_services
    from documents.models import Confirmation
    from documents.rendering import pdf_from_html
    from registration.services import roster_import
    from workflow.models import Submission

    assert not settings.CELERY_TASK_ALWAYS_EAGER  # the submission queues, never renders
    migrated()
    report = roster_import(path=bundle)
    assert report.ok, [str(p) for p in report.problems.errors[:5]]
    campaign = campaign_running(opened_days_ago=1, documents=True)
    family = _three_children_family(campaign)
    complete(family)
    submission_id = Submission.objects.get(registration_id=family.registration_id).pk
    assert not Confirmation.objects.exists()
    children_sections = sum(
        1
        for section in Submission.objects.get(pk=submission_id).content["sections"]
        if section["step"].startswith("child-")
    )
    assert children_sections == CHILDREN, children_sections

    # The part of each rendering spent in WeasyPrint, the rest being the template,
    # the queries and the storage.
    weasyprint_seconds: list[float] = []

    def timed_pdf_from_html(html: str) -> bytes:
        started = time.perf_counter()
        pdf = pdf_from_html(html)
        weasyprint_seconds.append(time.perf_counter() - started)
        return pdf

    document_services.pdf_from_html = timed_pdf_from_html

    def render() -> tuple[float, bytes]:
        """One confirmation rendered and stored, then removed (untimed) so that the
        next round renders again."""
        submission = Submission.objects.get(pk=submission_id)
        started = time.perf_counter()
        confirmation = document_services.confirmation_render(submission=submission)
        seconds = time.perf_counter() - started
        with confirmation.pdf.open("rb") as handle:
            pdf = handle.read()
        confirmation.pdf.delete(save=False)
        confirmation.delete()
        return seconds, pdf

    _, pdf = render()  # warm-up: templates, fonts, the first queries of each kind
    confirmation_seconds = [render()[0] for _ in range(ROUNDS)]
    document_services.pdf_from_html = pdf_from_html
    del weasyprint_seconds[0]  # the warm-up's

    # One line, with the language PDF/UA asks for (WeasyPrint logs an error without).
    minimal = '<html lang="en"><p>Your registration is confirmed.</p></html>'
    pdf_from_html(minimal)
    baseline_seconds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        pdf_from_html(minimal)
        baseline_seconds.append(time.perf_counter() - started)

    value = _median_ms(confirmation_seconds)
    baseline = _median_ms(baseline_seconds)
    return {
        "size": CHILDREN,
        "value": value,
        "baseline": baseline,
        "unit": "ms",
        "ratio": round(baseline / value, 3),
        "children": CHILDREN,
        "sections": len(Submission.objects.get(pk=submission_id).content["sections"]),
        "pages": len(PdfReader(io.BytesIO(pdf)).pages),
        "pdf_bytes": len(pdf),
        "rounds": ROUNDS,
        "weasyprint_ms": _median_ms(weasyprint_seconds),
        # The fastest rounds, which other processes on the machine disturbed least.
        "confirmation_min_ms": round(1000 * min(confirmation_seconds), 1),
        "baseline_min_ms": round(1000 * min(baseline_seconds), 1),
        "confirmation_ms": [round(1000 * s, 1) for s in confirmation_seconds],
        "baseline_ms": [round(1000 * s, 1) for s in baseline_seconds],
    }


def generate(households: int, folder: Path) -> None:
    synthetic_district(folder, households=households)


def run(*, quick: bool) -> list[dict[str, object]]:
    """The figure, for bench/run.py: the same size quick or not (it is short)."""
    with tempfile.TemporaryDirectory() as folder:
        temporary = Path(folder)
        bundle = temporary / "bundle"
        environment = child_environment(f"sqlite:///{temporary / 'bench.sqlite3'}", temporary)
        for step in (["--generate"], ["--measure"]):
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    *step,
                    "--size",
                    str(HOUSEHOLDS),
                    "--bundle",
                    str(bundle),
                ],
                env=environment,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-3000:])
    figure = json.loads(result.stdout.strip().splitlines()[-1])
    return [{"name": "confirmation", "database": "sqlite", **figure}]


if __name__ == "__main__":
    command_line(__doc__, generate=generate, measure=measure, run=run, default=HOUSEHOLDS)
