"""Work queued for after a commit never turns a committed change into an error page:
when the broker is down, the payment stands and its receipt waits in the outbox."""

from __future__ import annotations

import logging

import pytest
from django.core.management import CommandError, call_command

from outbox.models import OutboxMessage
from payments.models import Checkout, LedgerEntry
from tests.outbox.broker import broker_at, port_closed
from tests.payments.conftest import deliver
from tests.payments.test_webhook import completed


@pytest.mark.usefixtures("family")
def test_a_payment_stands_when_its_receipt_cannot_be_queued(
    client, open_checkout, stripe_double, django_capture_on_commit_callbacks, caplog
):
    body = completed(stripe_double, open_checkout)
    with broker_at(f"redis://127.0.0.1:{port_closed()}/0"), caplog.at_level(logging.WARNING):
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(client, body)
        assert response.status_code == 200
        with pytest.raises(CommandError, match="The broker is unreachable"):
            call_command("outbox_dispatch", "--once")
    assert Checkout.objects.get().state == Checkout.State.PAID
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == 3
    message = OutboxMessage.objects.get()
    assert message.task_name == "payments.tasks.checkout_receipt_send_task"
    assert message.args == [open_checkout.pk]
    assert message.dispatched_at is None
    assert message.attempts == 2  # after the commit, then the dispatcher
    assert "Connection refused" in message.last_error
    assert "could not queue payments.tasks.checkout_receipt_send_task" in caplog.text
