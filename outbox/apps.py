from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = _("Outbox")

    def ready(self) -> None:
        from celery.signals import task_failure

        from outbox.services import message_reopen_after_failure

        task_failure.connect(message_reopen_after_failure, weak=False)
