"""The Celery application.

Settings come from Django's settings under the ``CELERY_`` prefix. Without
``CELERY_BROKER_URL`` tasks run in-process (``CELERY_TASK_ALWAYS_EAGER``), so the
embedded demo needs no broker.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("reregistration")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
