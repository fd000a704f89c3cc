"""The forms of the registration review: the queue's school filter, and sending a
registration back to the family. They clean and convert;
``workflow.services.registration_return`` writes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from config.school_field import SchoolField
from registration.models import School
from registration.wizard_forms import ControlCharacterValidator

COMMENT_MAX_LENGTH = 2000


class RegistrationQueueFilterForm(forms.Form):
    """The queue's school, read from the query string (``?school=<id>`` or a name
    typed); the state is the queue's tabs'."""

    def __init__(self, *args: Any, schools: QuerySet[School], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["school"] = SchoolField(queryset=schools, empty_label=_("All schools"))

    def school(self) -> School | None:
        """The school chosen, or ``None`` for all of them (or when none was found)."""
        self.is_valid()
        return getattr(self, "cleaned_data", {}).get("school")


class RegistrationReturnForm(forms.Form):
    """What the family should correct, and the step of the wizard that opens again:
    one of the steps they signed."""

    comment = forms.CharField(
        label=_("What should the family correct?"),
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("The family reads this on their registration page and in the email."),
        error_messages={"required": _("Please say what the family should correct.")},
        validators=[ControlCharacterValidator(multiline=True)],
    )
    step = forms.ChoiceField(
        label=_("Open the registration again at"),
        help_text=_("The wizard opens at this step; all the other answers are kept."),
    )

    def __init__(self, *args: Any, steps: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["step"].choices = steps  # type: ignore[attr-defined]
