"""The registrar's choice of households to remind. The form cleans and converts;
``workflow.services.reminders_send`` decides whom to write to."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from config.widgets import LongSelectMultiple
from registration.grades import GRADE_LABELS, PROMOTION_ORDER
from registration.models import School
from workflow.models import Registration
from workflow.selectors import REMINDER_STATES

SCHOOLS_AS_CHECKBOXES = 20


class ReminderFilterForm(forms.Form):
    schools = forms.ModelMultipleChoiceField(
        label=_("Schools"),
        queryset=School.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: every school."),
    )
    grades = forms.MultipleChoiceField(
        label=_("Grades this year"),
        choices=[(grade, GRADE_LABELS[grade]) for grade in PROMOTION_ORDER],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: every grade."),
    )
    states = forms.MultipleChoiceField(
        label=_("Registration status"),
        choices=[(state, Registration.State(state).label) for state in REMINDER_STATES],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one status.")},
    )

    def __init__(self, *args: Any, schools: QuerySet[School], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["schools"].queryset = schools.only("pk", "name").order_by("name")  # type: ignore[attr-defined]
        if schools.count() > SCHOOLS_AS_CHECKBOXES:
            # A thousand check boxes are no way to choose: a list the keyboard can
            # search by typing, rendered without a template per school.
            # Plain rows: a model instance per school cost more than the options.
            self.fields["schools"].widget = LongSelectMultiple(
                choices=list(schools.order_by("name").values_list("pk", "name"))
            )

    @property
    def filters(self) -> dict[str, list[Any]]:
        """The arguments of ``reminder_preview`` and ``reminders_send``."""
        return {
            "school_ids": sorted(school.pk for school in self.cleaned_data["schools"]),
            "grades": list(self.cleaned_data["grades"]),
            "states": list(self.cleaned_data["states"]),
        }

    @property
    def query(self) -> list[tuple[str, Any]]:
        """The cleaned choices as query parameters, to show the same choice again."""
        filters = self.filters
        return [
            *(("schools", pk) for pk in filters["school_ids"]),
            *(("grades", grade) for grade in filters["grades"]),
            *(("states", state) for state in filters["states"]),
        ]
