"""Work queued for after a commit never turns a committed change into an error page:
when the broker (or, in-process, the task) fails, the failure is logged."""

from __future__ import annotations

import logging

import pytest
from kombu.exceptions import OperationalError

from config.after_commit import delay_after_commit
from payments.models import Checkout, LedgerEntry
from payments.tasks import checkout_receipt_send_task
from tests.payments.conftest import deliver
from tests.payments.test_webhook import completed


class _Unreachable:
    name = "tests.unreachable"

    def delay(self, *args: object) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_a_task_that_cannot_be_queued_is_logged_by_name(
    db, django_capture_on_commit_callbacks, caplog
):
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        delay_after_commit(_Unreachable(), 1)
    assert "Error calling tests.unreachable.delay in on_commit()" in caplog.text


@pytest.mark.usefixtures("family")
def test_a_payment_stands_when_its_receipt_cannot_be_queued(
    client, open_checkout, stripe_double, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    monkeypatch.setattr(checkout_receipt_send_task, "delay", _Unreachable().delay)
    body = completed(stripe_double, open_checkout)
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, body)
    assert response.status_code == 200
    assert Checkout.objects.get().state == Checkout.State.PAID
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == 3
    assert "checkout_receipt_send_task.delay" in caplog.text
