"""``python manage.py reconcile_payouts [--since YYYY-MM-DD]``: reconcile Stripe's
payouts with the ledger (see ``finance.services``). Running it again is harmless."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from finance.services import reconcile_payouts
from payments.stripe_gateway import PaymentServiceError


def _day(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since must be a date such as 2026-09-01, not {value!r}") from None


class Command(BaseCommand):
    help = (
        "Reconcile Stripe payouts with the ledger: match each charge, refund and Stripe "
        "fee, and find what does not match."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            type=_day,
            help="only payouts created on or after this day (YYYY-MM-DD); default: every payout",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = options["since"]
        try:
            run = reconcile_payouts(since=since, actor_label="reconcile_payouts command")
        except PaymentServiceError as error:
            raise CommandError(
                f"Stripe could not be read: {error.detail or error.message}"
            ) from error
        self.stdout.write(
            f"{run.payouts} payout(s), {run.transactions} item(s) compared: "
            f"{run.new_mismatches} new mismatch(es), {run.resolved} resolved, "
            f"{run.open_mismatches} to explain. ({run.outcome})"
        )
