"""Forms of the registrar's campaign pages: they clean and convert; the services in
``workflow.services`` write."""

from __future__ import annotations

import datetime
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from registration.models import AcademicSession
from workflow.models import Acknowledgement, Campaign

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y"]


class SchoolYearChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.label} ({obj.title})"


class CampaignForm(forms.Form):
    """A new campaign (for a school year that has none yet), or the dates and rules of
    an existing one, whose school year stays."""

    school_year = SchoolYearChoiceField(
        label=_("School year"),
        queryset=AcademicSession.objects.none(),
        empty_label=_("Choose a school year"),
        help_text=_("The school year families register for."),
    )
    opens_on = forms.DateField(
        label=_("Opens on"),
        input_formats=DATE_FORMATS,
        widget=DATE_INPUT,
        help_text=_("The first day families can register."),
    )
    closes_on = forms.DateField(
        label=_("Closes on"),
        input_formats=DATE_FORMATS,
        widget=DATE_INPUT,
        help_text=_("The last day families can register."),
    )
    fees_before_submit = forms.BooleanField(
        label=_("Required fees must be paid or waived before a family can submit"),
        required=False,
    )
    approve_with_open_address_request = forms.BooleanField(
        label=_("Allow approval while an address change still awaits its visit"),
        required=False,
    )

    def __init__(self, *args: Any, campaign: Campaign | None = None, **kwargs: Any) -> None:
        if campaign is not None:
            kwargs.setdefault(
                "initial",
                {
                    "school_year": campaign.school_year,
                    "opens_on": campaign.opens_on,
                    "closes_on": campaign.closes_on,
                    "fees_before_submit": campaign.fees_before_submit,
                    "approve_with_open_address_request": (
                        campaign.approve_with_open_address_request
                    ),
                },
            )
        super().__init__(*args, **kwargs)
        years = AcademicSession.objects.filter(
            session_type=AcademicSession.SessionType.SCHOOL_YEAR
        ).order_by("start_date")
        field = cast(forms.ModelChoiceField, self.fields["school_year"])
        if campaign is None:
            field.queryset = years.filter(campaign__isnull=True)
            self.school_years_available = field.queryset.exists()
        else:
            # Registrations and decisions belong to the year: it never changes.
            field.queryset = years.filter(pk=campaign.school_year_id)
            field.disabled = True
            field.help_text = _("The school year of a campaign does not change.")
            self.school_years_available = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        opens_on: datetime.date | None = cleaned.get("opens_on")
        closes_on: datetime.date | None = cleaned.get("closes_on")
        if opens_on and closes_on and closes_on < opens_on:
            self.add_error(
                "closes_on",
                forms.ValidationError(
                    _("The closing date must be on or after the opening date."),
                    code="before_opening",
                ),
            )
        return cleaned


class AcknowledgementForm(forms.Form):
    """A document families accept, in every language of the product. When editing, the short
    name stays: it is what ties the versions together."""

    key = forms.SlugField(
        label=_("Short name"),
        max_length=50,
        help_text=_(
            "Lowercase letters, numbers and hyphens, for example family-handbook. "
            "It stays the same across versions."
        ),
    )
    title_en = forms.CharField(label=_("Title in English"), max_length=200)
    body_en = forms.CharField(label=_("Text in English"), widget=forms.Textarea(attrs={"rows": 8}))
    title_es = forms.CharField(
        label=_("Title in Spanish"), max_length=200, widget=forms.TextInput(attrs={"lang": "es"})
    )
    body_es = forms.CharField(
        label=_("Text in Spanish"), widget=forms.Textarea(attrs={"rows": 8, "lang": "es"})
    )
    title_zh = forms.CharField(
        label=_("Title in Simplified Chinese"),
        max_length=200,
        widget=forms.TextInput(attrs={"lang": "zh-Hans"}),
    )
    body_zh = forms.CharField(
        label=_("Text in Simplified Chinese"),
        widget=forms.Textarea(attrs={"rows": 8, "lang": "zh-Hans"}),
    )
    required = forms.BooleanField(
        label=_("Families must accept it before they can submit"), required=False, initial=True
    )
    position = forms.IntegerField(
        label=_("Order"),
        min_value=0,
        max_value=32767,
        initial=0,
        help_text=_("Documents are shown from the lowest number to the highest."),
    )

    TEXT_FIELDS = ("title_en", "body_en", "title_es", "body_es", "title_zh", "body_zh")

    def __init__(
        self,
        *args: Any,
        campaign: Campaign,
        acknowledgement: Acknowledgement | None = None,
        **kwargs: Any,
    ) -> None:
        if acknowledgement is not None:
            kwargs.setdefault(
                "initial",
                {
                    "key": acknowledgement.key,
                    "required": acknowledgement.required,
                    "position": acknowledgement.position,
                    **{name: getattr(acknowledgement, name) for name in self.TEXT_FIELDS},
                },
            )
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        if acknowledgement is not None:
            self.fields["key"].disabled = True
            self.fields["key"].help_text = _("The short name stays the same across versions.")
            if not acknowledgement.title_zh:
                # Written before the product spoke Chinese: its other details can
                # still be changed; adding the translation later keeps the version.
                for name in ("title_zh", "body_zh"):
                    self.fields[name].required = False

    def clean_key(self) -> str:
        key: str = self.cleaned_data["key"]
        if self.fields["key"].disabled:
            return key
        versions = Acknowledgement.objects.filter(campaign=self.campaign, key=key)
        if versions.filter(is_current=True).exists():
            raise forms.ValidationError(
                _("This campaign already has a document with this short name."), code="taken"
            )
        if versions.exists():
            # The numbering of a retired document's versions is not restarted.
            raise forms.ValidationError(
                _("A retired document of this campaign used this short name; choose another."),
                code="retired",
            )
        return key

    @property
    def texts(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in self.TEXT_FIELDS}


class AuditFilterForm(forms.Form):
    """The audit page's filters, all optional; read from the query string."""

    actor = forms.CharField(
        label=_("Who acted"),
        required=False,
        max_length=200,
        help_text=_("A member of staff's name or email address, or part of it."),
    )
    student = forms.CharField(
        label=_("About a student"),
        required=False,
        max_length=200,
        help_text=_(
            "A student's roster id or name. Events about the student's households are included."
        ),
    )
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
            raise forms.ValidationError(
                _("The first day must not be after the last day."), code="dates"
            )
        return cleaned
