"""Forms of the staff pages about address changes: the queue's filters, recording a
visit, rejecting, the day's visits and a school's office hours. They clean and
convert; ``workflow.services`` writes."""

from __future__ import annotations

import datetime
from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from config.school_field import SchoolField
from registration.models import School
from registration.wizard_forms import ControlCharacterValidator
from workflow.models import PROOF_KINDS, AddressChangeRequest, OfficeHours

DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y"]
TIME_INPUT = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
SLOT_MINUTES = [5, 10, 15, 20, 30, 45, 60]
# Office hours per weekday: a morning and an afternoon, for offices that close at noon.
RANGES_PER_DAY = 2


def _school_field(schools: QuerySet[School], empty_label: Any) -> SchoolField:
    return SchoolField(queryset=schools, empty_label=empty_label)


class AddressQueueFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Requested or awaiting visit"))]
        + [(state.value, state.label) for state in AddressChangeRequest.OPEN_STATES],
    )
    older_than = forms.IntegerField(
        label=_("At least this many days old"), required=False, min_value=0, max_value=3650
    )

    def __init__(self, *args: Any, schools: QuerySet[School], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = {"school": _school_field(schools, _("All my schools")), **self.fields}

    def filters(self) -> dict[str, Any]:
        """The valid filters as ``address_queue`` takes them; invalid ones are left out."""
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return {
            "school": cleaned.get("school"),
            "state": cleaned.get("state") or "",
            "older_than_days": cleaned.get("older_than"),
        }


class VisitRecordForm(forms.Form):
    proofs_seen = forms.MultipleChoiceField(
        label=_("Proofs you saw (the originals)"),
        choices=PROOF_KINDS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Tick every proof of the new address you saw; at least two."),
    )

    def clean_proofs_seen(self) -> list[str]:
        kinds = cast(list[str], self.cleaned_data.get("proofs_seen") or [])
        if len(set(kinds)) < 2:
            raise forms.ValidationError(_("Tick at least two proofs you saw."))
        return kinds


class AddressRejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Why the address could not be verified"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The family receives this by email."),
        validators=[ControlCharacterValidator(multiline=True)],
    )

    def clean_reason(self) -> str:
        reason = cast(str, self.cleaned_data["reason"]).strip()
        if not reason:
            raise forms.ValidationError(_("Please give the reason, for the family."))
        return reason


class VisitDayForm(forms.Form):
    date = forms.DateField(
        label=_("Day"),
        required=False,
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, schools: QuerySet[School], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["school"] = _school_field(schools, _("All my schools"))


class VisitScheduleForm(forms.Form):
    """A school's visit schedule: minutes per visit, families per slot, and up to two
    ranges of office hours per weekday. Office staff change only the hours."""

    slot_minutes = forms.TypedChoiceField(
        label=_("Minutes per visit"),
        coerce=int,
        choices=[(m, str(m)) for m in SLOT_MINUTES],
    )
    capacity = forms.IntegerField(
        label=_("Families per slot"),
        min_value=1,
        max_value=20,
        help_text=_("How many families staff can see at the same time."),
    )

    def __init__(
        self, *args: Any, school: School, may_change_slots: bool = True, **kwargs: Any
    ) -> None:
        self.school = school
        schedule = getattr(school, "visit_schedule", None)
        initial: dict[str, Any] = {
            "slot_minutes": schedule.slot_minutes if schedule else 15,
            "capacity": schedule.capacity if schedule else 1,
        }
        taken: dict[int, int] = {}
        for hours in school.office_hours.all():
            index = taken.get(hours.weekday, 0) + 1
            if index > RANGES_PER_DAY:
                continue
            taken[hours.weekday] = index
            initial[f"d{hours.weekday}_opens_{index}"] = hours.opens_at
            initial[f"d{hours.weekday}_closes_{index}"] = hours.closes_at
        kwargs["initial"] = {**initial, **(kwargs.get("initial") or {})}
        super().__init__(*args, **kwargs)
        for weekday, label in OfficeHours.Weekday.choices:
            for index in range(1, RANGES_PER_DAY + 1):
                self.fields[f"d{weekday}_opens_{index}"] = forms.TimeField(
                    label=_("%(day)s: opens") % {"day": label},
                    required=False,
                    widget=TIME_INPUT,
                )
                self.fields[f"d{weekday}_closes_{index}"] = forms.TimeField(
                    label=_("%(day)s: closes") % {"day": label},
                    required=False,
                    widget=TIME_INPUT,
                )
        self.may_change_slots = may_change_slots
        if not may_change_slots:
            self.fields["slot_minutes"].disabled = True
            self.fields["capacity"].disabled = True

    def days(self) -> list[tuple[Any, list[tuple[forms.BoundField, forms.BoundField]]]]:
        """Per weekday: its label and its ranges (opens, closes)."""
        return [
            (
                label,
                [
                    (self[f"d{weekday}_opens_{i}"], self[f"d{weekday}_closes_{i}"])
                    for i in range(1, RANGES_PER_DAY + 1)
                ],
            )
            for weekday, label in OfficeHours.Weekday.choices
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for weekday, label in OfficeHours.Weekday.choices:
            ranges: list[tuple[datetime.time, datetime.time]] = []
            for index in range(1, RANGES_PER_DAY + 1):
                opens_name, closes_name = f"d{weekday}_opens_{index}", f"d{weekday}_closes_{index}"
                if opens_name in self.errors or closes_name in self.errors:
                    continue
                opens, closes = cleaned.get(opens_name), cleaned.get(closes_name)
                if opens is None and closes is None:
                    continue
                if opens is None or closes is None:
                    self.add_error(
                        opens_name if opens is None else closes_name,
                        _("Give both the opening and the closing time, or neither."),
                    )
                elif closes <= opens:
                    self.add_error(closes_name, _("The office must close after it opens."))
                elif any(
                    opens < other_closes and other_opens < closes
                    for other_opens, other_closes in ranges
                ):
                    self.add_error(
                        opens_name, _("%(day)s: these hours overlap the others.") % {"day": label}
                    )
                else:
                    ranges.append((opens, closes))
        return cleaned

    def hours(self) -> list[tuple[int, datetime.time, datetime.time]]:
        """The office hours as (weekday, opens, closes)."""
        hours = []
        for weekday, _label in OfficeHours.Weekday.choices:
            for index in range(1, RANGES_PER_DAY + 1):
                opens = self.cleaned_data.get(f"d{weekday}_opens_{index}")
                closes = self.cleaned_data.get(f"d{weekday}_closes_{index}")
                if opens is not None and closes is not None:
                    hours.append((weekday, opens, closes))
        return hours
