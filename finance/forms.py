"""The finance pages' filters and finance's explanation of a mismatch."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from finance.models import Payout, ReconciliationItem
from payments.models import Refund
from registration.wizard_forms import ControlCharacterValidator
from workflow.forms import DATE_FORMATS, DATE_INPUT


class DateRangeForm(forms.Form):
    """From a day to a day, both included; read from the query string."""

    since = forms.DateField(
        label=_("From"), required=False, input_formats=DATE_FORMATS, widget=DATE_INPUT
    )
    until = forms.DateField(
        label=_("To"), required=False, input_formats=DATE_FORMATS, widget=DATE_INPUT
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error(
                "until",
                forms.ValidationError(
                    _("The last day must not be before the first day."), code="dates"
                ),
            )
        return cleaned


class PayoutFilterForm(DateRangeForm):
    STATUS_CHOICES = [("", _("Every status")), *Payout.Status.choices]

    status = forms.ChoiceField(label=_("Reconciliation"), required=False, choices=STATUS_CHOICES)
    field_order = ["status", "since", "until"]
    field_order = ["status", "since", "until"]


class MismatchFilterForm(forms.Form):
    STATE_CHOICES = [
        ("open", _("To explain")),
        ("explained", _("Explained")),
        ("resolved", _("Resolved since")),
        ("all", _("All")),
    ]
    KIND_CHOICES = [
        ("", _("Every kind")),
        *(
            (value, label)
            for value, label in ReconciliationItem.Kind.choices
            if value
            in (
                ReconciliationItem.Kind.STRIPE_ONLY,
                ReconciliationItem.Kind.LEDGER_ONLY,
                ReconciliationItem.Kind.AMOUNT_MISMATCH,
                ReconciliationItem.Kind.UNMATCHED,
            )
        ),
    ]

    state = forms.ChoiceField(label=_("Show"), required=False, choices=STATE_CHOICES)
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=KIND_CHOICES)


class CollectionsForm(DateRangeForm):
    """Collections of a period: this month so far unless told."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        today = timezone.localdate()
        cleaned["since"] = cleaned.get("since") or today.replace(day=1)
        cleaned["until"] = cleaned.get("until") or max(today, cleaned["since"])
        return cleaned


class RefundFilterForm(DateRangeForm):
    STATE_CHOICES = [("", _("Every state")), *Refund.State.choices]

    state = forms.ChoiceField(label=_("State"), required=False, choices=STATE_CHOICES)
    field_order = ["state", "since", "until"]
    field_order = ["state", "since", "until"]


class MonthForm(forms.Form):
    """A month, typed as 2026-09 (the browser's month picker sends that)."""

    month = forms.DateField(
        label=_("Month"),
        required=False,
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        help_text=_("For example 2026-09."),
        error_messages={"invalid": _("Enter a month as year and month, for example 2026-09.")},
    )

    def clean_month(self) -> datetime.date:
        month = self.cleaned_data.get("month") or timezone.localdate()
        return month.replace(day=1)


class ExplainForm(forms.Form):
    note = forms.CharField(
        label=_("Explanation"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "What explains this difference, and what was done about it. Kept with the "
            "mismatch and in the audit log."
        ),
        error_messages={"required": _("Please write what explains this difference.")},
        validators=[ControlCharacterValidator(multiline=True)],
    )

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError(
                _("Please write what explains this difference."), code="required"
            )
        return note
