from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistrationConfig(AppConfig):
    name = "registration"
    verbose_name = _("District records")

    def ready(self) -> None:
        # Receivers that log failed sign-ins and second factors (never what was typed).
        from config import security_log  # noqa: F401
