"""Settings of the Celery workers the fault tests start: the product's settings, and,
when ``FAULT_RENDER_PAUSE_SECONDS`` is set, a worker whose PDF rendering takes that
much longer: it renders, writes ``FAULT_RENDER_MARK`` (so that the test knows the
rendering is under way), then waits before handing the PDF back. Nothing else reads
these variables."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery.signals import worker_process_init

from config.settings import *  # noqa: F403

_PAUSE = float(os.environ.get("FAULT_RENDER_PAUSE_SECONDS", "0") or 0)


def _slow_rendering(**_: object) -> None:
    from documents import services

    real = services.pdf_from_html
    mark = Path(os.environ["FAULT_RENDER_MARK"])

    def pdf_from_html(html: str) -> bytes:
        pdf = real(html)
        mark.write_text(str(os.getpid()))
        time.sleep(_PAUSE)
        return pdf

    services.pdf_from_html = pdf_from_html


if _PAUSE:
    # In each worker process, after the fork: the rendering the task calls.
    worker_process_init.connect(_slow_rendering, weak=False)
