"""Queue a Celery task once the current transaction commits, never failing the request.

``transaction.on_commit(..., robust=True)`` logs and swallows an error of its
callback (the broker is down, or in the embedded demo the task itself raised), so a
family's submission that has committed is never answered with an error. Django logs
the callback by its ``__qualname__``, which ``functools.partial`` objects lack (the
logging itself would then raise); this names the callback after the task.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction


def delay_after_commit(task: Any, *args: Any) -> None:
    """``task.delay(*args)`` after the commit of the current transaction (at once
    outside one); an error is logged, not raised."""

    def send() -> None:
        task.delay(*args)

    send.__qualname__ = f"{task.name}.delay"
    transaction.on_commit(send, robust=True)
