"""The Celery application.

Settings come from Django's settings under the ``CELERY_`` prefix. Without
``CELERY_BROKER_URL`` tasks run in-process (``CELERY_TASK_ALWAYS_EAGER``), so the
embedded demo needs no broker.

Every task is built on ``ProductTask``: acknowledged once it finished (a worker that
dies mid-task leaves it to another), and retried with exponential backoff and jitter
on errors that pass by themselves: the mail server, the network, the broker, the
database restarting. Delivery is therefore at least once and every task is
idempotent. Work queued by a change goes through the outbox (``outbox.services``).
"""

from __future__ import annotations

import os

from celery import Celery, Task
from django.db import InterfaceError
from django.db import OperationalError as DatabaseOperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Errors that say "try again later", not "this cannot work": OSError covers the
# network, SMTPException and connection refusals.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    DatabaseOperationalError,
    InterfaceError,
    BrokerOperationalError,
)


class ProductTask(Task):
    """The defaults of every task in the product; a task may narrow them."""

    acks_late = True
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = True
    retry_backoff_max = 600
    retry_jitter = True
    # Ten retries, doubling from 1 s with full jitter up to 600 s: about 8 minutes on
    # average, 17 at most. An outbox task that still fails is published again later
    # (``outbox.services.message_reopen_after_failure``).
    max_retries = 10


app = Celery("reregistration", task_cls=ProductTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
