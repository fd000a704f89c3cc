"""Every task of the product is acknowledged late, given to another worker when its
worker dies, and retried with backoff on errors that pass; production refuses a
visibility timeout a task could outlast."""

from __future__ import annotations

import importlib

from django.db import OperationalError

from config.celery import app
from tests.config.test_settings import SECRET, STRIPE, run

APPS = ("registration", "workflow", "payments", "documents", "finance")


def test_workers_take_one_task_at_a_time_and_acknowledge_it_when_done():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_max_tasks_per_child == 50
    assert (conf.task_time_limit, conf.task_soft_time_limit) == (600, 540)
    assert conf.broker_transport_options["visibility_timeout"] == 3600


def test_every_task_retries_errors_that_pass_with_backoff():
    for name in APPS:
        importlib.import_module(f"{name}.tasks")
    tasks = [task for name, task in app.tasks.items() if name.split(".")[0] in APPS]
    assert len(tasks) >= 14
    for task in tasks:
        assert task.acks_late, task.name
        assert issubclass(ConnectionRefusedError, task.autoretry_for), task.name
        assert issubclass(OperationalError, task.autoretry_for), task.name
        assert task.retry_backoff and task.max_retries >= 5, task.name


def test_production_refuses_a_visibility_timeout_shorter_than_a_task_may_run():
    result = run(
        ["manage.py", "check"],
        DJANGO_ENV="production",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="registration.example.org",
        CELERY_VISIBILITY_TIMEOUT="300",
        **STRIPE,
    )
    assert result.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT must be longer than CELERY_TASK_TIME_LIMIT" in result.stderr
