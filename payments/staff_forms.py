"""Forms of the staff pages about fees: the catalog, field trips, meal eligibility,
payments and refunds. They clean and convert (dollars typed into integer cents,
dates checked against today); ``payments.services`` decides and writes."""

from __future__ import annotations

import datetime
import re
import uuid
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.school_field import SchoolField
from payments.models import Checkout, Fee
from payments.money import money
from registration.models import ClassSection, School
from registration.wizard_forms import ControlCharacterValidator
from workflow.models import Campaign

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y"]
# An amount as people type it: 18.50, $18.50, 1,250 or 1250.00.
DOLLARS = re.compile(r"^(?:\d+|\d{1,3}(?:,\d{3})+)?(?:\.(\d+))?$")
TRIP_MAX_CENTS = 500_000
FEE_MAX_CENTS = 1_000_000
GL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")


def dollars_text(cents: int) -> str:
    """Cents as they are typed back into a form: 1850 → "18.50"."""
    return f"{cents // 100}.{cents % 100:02d}"


class DollarsField(forms.Field):
    """An amount typed in dollars, cleaned into integer cents above zero."""

    default_error_messages = {
        "invalid": _("Enter an amount in dollars, for example 18.50."),
        "decimals": _("Enter at most two digits after the decimal point (cents)."),
        "min_amount": _("The amount must be more than $0.00."),
        "max_amount": _("The amount cannot be more than %(limit)s."),
    }

    def __init__(self, *, max_cents: int = FEE_MAX_CENTS, **kwargs: Any) -> None:
        self.max_cents = max_cents
        kwargs.setdefault(
            "widget",
            forms.TextInput(
                attrs={"inputmode": "decimal", "autocomplete": "off", "size": 10, "maxlength": 20}
            ),
        )
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return dollars_text(value)
        return value

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).replace("$", "").replace(" ", "").strip()
        if not text:
            return None
        if len(text) > 20:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        match = DOLLARS.fullmatch(text)
        if match is None or text in (".", ""):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        whole, _dot, fraction = text.replace(",", "").partition(".")
        if len(fraction) > 2:
            raise forms.ValidationError(self.error_messages["decimals"], code="decimals")
        cents = int(whole or "0") * 100 + int((fraction + "00")[:2])
        if cents <= 0:
            raise forms.ValidationError(self.error_messages["min_amount"], code="min_amount")
        if cents > self.max_cents:
            raise forms.ValidationError(
                self.error_messages["max_amount"],
                code="max_amount",
                params={"limit": money(self.max_cents)},
            )
        return cents


def _not_past(value: datetime.date | None, message: Any) -> None:
    if value is not None and value < timezone.localdate():
        raise forms.ValidationError(message, code="past")


class ClassChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.title} · {obj.school.name}"


# -- field trips ------------------------------------------------------------------------


def _translation(label: Any, language: str, *, help_text: Any = "", rows: int = 0) -> forms.Field:
    """An optional text in another language, marked as such for screen readers."""
    attrs = {"lang": language}
    widget = forms.Textarea(attrs={**attrs, "rows": rows}) if rows else forms.TextInput(attrs)
    return forms.CharField(
        label=label,
        max_length=2000 if rows else 200,
        required=False,
        help_text=help_text,
        widget=widget,
        validators=[ControlCharacterValidator(multiline=bool(rows))],
    )


class TranslatedTextsForm(forms.Form):
    """A fee's title and description for families who read Spanish or Chinese; left
    blank, they see the English ones. Shown after the English title and description."""

    title_es = _translation(
        _("Title in Spanish"),
        "es",
        help_text=_("Blank: families who read Spanish see the English title."),
    )
    title_zh = _translation(
        _("Title in Simplified Chinese"),
        "zh-Hans",
        help_text=_("Blank: families who read Chinese see the English title."),
    )
    description_es = _translation(_("Description in Spanish"), "es", rows=3)
    description_zh = _translation(_("Description in Simplified Chinese"), "zh-Hans", rows=3)

    field_order = ["title", "title_es", "title_zh", "description", "description_es"]


class FieldTripForm(TranslatedTextsForm):
    """A teacher's trip for one of the classes they teach."""

    field_order = ["section", *TranslatedTextsForm.field_order]

    section = ClassChoiceField(
        label=_("Class"),
        queryset=ClassSection.objects.none(),
        empty_label=_("Choose a class"),
        help_text=_("Every student enrolled in this class is charged for the trip."),
        error_messages={
            "required": _("Please choose the class that goes on the trip."),
            "invalid_choice": _("You can create trips only for the classes you teach."),
        },
    )
    title = forms.CharField(
        label=_("Title"),
        max_length=200,
        help_text=_("Families see it on their fees page, for example “Aquarium visit”."),
        error_messages={"required": _("Please give the trip a title.")},
        validators=[ControlCharacterValidator(multiline=False)],
    )
    description = forms.CharField(
        label=_("Description"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What families should know: where, when the bus leaves, what to bring."),
        validators=[ControlCharacterValidator(multiline=True)],
    )
    event_date = forms.DateField(
        label=_("Date of the trip"),
        input_formats=DATE_FORMATS,
        widget=DATE_INPUT,
        error_messages={
            "required": _("Please give the date of the trip."),
            "invalid": _("Enter the date of the trip, for example 2027-04-21."),
        },
    )
    amount = DollarsField(
        label=_("Amount per student, in dollars"),
        max_cents=TRIP_MAX_CENTS,
        help_text=_("For example 18.50."),
        error_messages={"required": _("Please give the amount each student pays.")},
    )
    deadline = forms.DateField(
        label=_("Pay by"),
        input_formats=DATE_FORMATS,
        widget=DATE_INPUT,
        help_text=_("The last day families can pay; on or before the trip."),
        error_messages={
            "required": _("Please give the last day families can pay."),
            "invalid": _("Enter the last day to pay, for example 2027-04-14."),
        },
    )
    waivable_for_free_meals = forms.BooleanField(
        label=_("Waive the trip for students eligible for free or reduced-price meals"),
        required=False,
        initial=True,
    )

    def __init__(self, *args: Any, classes: list[ClassSection], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["section"])
        field.queryset = ClassSection.objects.filter(
            pk__in=[section.pk for section in classes]
        ).select_related("school")
        if len(classes) == 1:
            self.initial.setdefault("section", classes[0].pk)

    def clean_event_date(self) -> datetime.date:
        value = self.cleaned_data["event_date"]
        _not_past(value, _("The trip cannot be in the past."))
        return value

    def clean_deadline(self) -> datetime.date:
        value = self.cleaned_data["deadline"]
        _not_past(value, _("The last day to pay cannot be in the past."))
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        event_date, deadline = cleaned.get("event_date"), cleaned.get("deadline")
        if event_date and deadline and deadline > event_date:
            self.add_error(
                "deadline",
                forms.ValidationError(
                    _("The last day to pay cannot be after the trip."), code="after_trip"
                ),
            )
        return cleaned

    @property
    def posted_another_class(self) -> bool:
        """A class id was posted that is not one of the teacher's classes."""
        return self.has_error("section", "invalid_choice")


class FieldTripCancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is the trip cancelled?"),
        max_length=500,
        required=False,
        help_text=_("Kept with the cancelled charges in the ledger."),
    )


# -- the catalog ---------------------------------------------------------------------------


class CampaignChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj)


class FeeForm(TranslatedTextsForm):
    """A lunch prepayment, an optional item or a required fee: only the fields of its
    kind. A field trip's teacher owns the trip; finance sets its GL code only."""

    title = forms.CharField(
        label=_("Title"),
        max_length=200,
        help_text=_("Families see it on their fees page and on Stripe's payment page."),
        error_messages={"required": _("Please give the fee a title.")},
        validators=[ControlCharacterValidator(multiline=False)],
    )
    description = forms.CharField(
        label=_("Description"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[ControlCharacterValidator(multiline=True)],
    )
    amount = DollarsField(
        label=_("Amount, in dollars"),
        help_text=_("For example 40.00."),
        error_messages={"required": _("Please give the amount of the fee.")},
    )
    min_amount = DollarsField(
        label=_("Smallest amount a family can put on the lunch account, in dollars"),
        help_text=_("For example 5.00."),
        error_messages={"required": _("Please give the smallest amount.")},
    )
    max_amount = DollarsField(
        label=_("Largest amount a child's lunch account takes, in dollars"),
        help_text=_("In total, over every payment: for example 200.00."),
        error_messages={"required": _("Please give the largest amount.")},
    )
    campaign = CampaignChoiceField(
        label=_("Campaign"),
        queryset=Campaign.objects.none(),
        required=False,
        empty_label=_("None"),
        error_messages={"required": _("Please choose the campaign this fee is required for.")},
    )
    school = SchoolField(
        queryset=School.objects.none(),
        empty_label=_("Every school"),
        help_text=_("Only the students of this school are asked to pay it."),
    )
    gl_code = forms.CharField(
        label=_("General ledger (GL) code"),
        max_length=50,
        help_text=_(
            "The account in the district's books that this fee's payments and refunds "
            "are posted to, for example 4100-FEES. Finance's accounting export uses "
            "it, so every fee needs one."
        ),
        error_messages={"required": _("Please give the GL code this fee is posted to.")},
    )
    waivable_for_free_meals = forms.BooleanField(
        label=_("Waive it for students eligible for free or reduced-price meals"),
        required=False,
        help_text=_(
            "Eligible students are waived at once, and again whenever their "
            "eligibility is imported. Turning this off later keeps the waivers "
            "already made."
        ),
    )
    deadline = forms.DateField(
        label=_("Pay by"),
        required=False,
        input_formats=DATE_FORMATS,
        widget=DATE_INPUT,
        help_text=_("Blank: families can pay it at any time."),
        error_messages={"invalid": _("Enter a date, for example 2027-09-30.")},
    )

    FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
        Fee.Kind.LUNCH_PREPAY: (
            "title",
            "description",
            *TranslatedTextsForm.declared_fields,
            "min_amount",
            "max_amount",
            "campaign",
            "school",
            "gl_code",
            "deadline",
        ),
        Fee.Kind.OPTIONAL: (
            "title",
            "description",
            *TranslatedTextsForm.declared_fields,
            "amount",
            "campaign",
            "school",
            "gl_code",
            "waivable_for_free_meals",
            "deadline",
        ),
        Fee.Kind.REQUIRED: (
            "title",
            "description",
            *TranslatedTextsForm.declared_fields,
            "amount",
            "campaign",
            "school",
            "gl_code",
            "waivable_for_free_meals",
            "deadline",
        ),
        Fee.Kind.FIELD_TRIP: ("gl_code", *TranslatedTextsForm.declared_fields),
    }
    # Form field → model field.
    MODEL_FIELDS = {
        "amount": "amount_cents",
        "min_amount": "min_amount_cents",
        "max_amount": "max_amount_cents",
    }

    def __init__(self, *args: Any, kind: str, fee: Fee | None = None, **kwargs: Any) -> None:
        self.kind = kind
        self.fee = fee
        if fee is not None:
            initial = {
                form_name: getattr(fee, self.MODEL_FIELDS.get(form_name, form_name))
                for form_name in self.FIELDS_BY_KIND[kind]
            }
            kwargs.setdefault("initial", initial)
        elif kind == Fee.Kind.REQUIRED:
            kwargs.setdefault("initial", {"waivable_for_free_meals": True})
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name not in self.FIELDS_BY_KIND[kind]:
                del self.fields[name]
        if "campaign" in self.fields:
            campaign = cast(forms.ModelChoiceField, self.fields["campaign"])
            campaign.queryset = Campaign.objects.select_related("school_year").order_by("-opens_on")
            if kind == Fee.Kind.REQUIRED:
                campaign.required = True
                campaign.empty_label = _("Choose a campaign")
                campaign.help_text = _(
                    "Families registering in this campaign must pay it (or have it waived)."
                )
            else:
                campaign.help_text = _("Blank: not tied to a campaign.")
        if "school" in self.fields:
            cast(SchoolField, self.fields["school"]).queryset = School.objects.all()
        if fee is not None and not fee.gl_code:
            # Fees made before GL codes were asked for can be saved without one.
            self.fields["gl_code"].required = False

    def clean_gl_code(self) -> str:
        value = self.cleaned_data["gl_code"].strip()
        if value and not GL_CODE.fullmatch(value):
            raise forms.ValidationError(
                _("Use letters, digits, hyphens and dots only, for example 4100-FEES."),
                code="gl_code",
            )
        return value

    def clean_deadline(self) -> datetime.date | None:
        value = self.cleaned_data.get("deadline")
        if self.fee is None or value != self.fee.deadline:
            _not_past(value, _("The last day to pay cannot be in the past."))
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        low, high = cleaned.get("min_amount"), cleaned.get("max_amount")
        if low and high and high < low:
            self.add_error(
                "max_amount",
                forms.ValidationError(
                    _("The largest amount must be at least the smallest amount."),
                    code="max_below_min",
                ),
            )
        return cleaned

    def values(self) -> dict[str, Any]:
        """The cleaned data as the fee's fields (amounts in cents)."""
        return {
            self.MODEL_FIELDS.get(name, name): value for name, value in self.cleaned_data.items()
        }


class FeeFilterForm(forms.Form):
    """The catalog's filters, all optional; read from the query string."""

    ACTIVE_CHOICES = [("", _("Active and inactive")), ("yes", _("Active")), ("no", _("Inactive"))]

    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("Every kind")), *Fee.Kind.choices]
    )
    school = SchoolField(queryset=School.objects.none(), empty_label=_("Any"))
    campaign = CampaignChoiceField(
        label=_("Campaign"), queryset=Campaign.objects.none(), required=False, empty_label=_("Any")
    )
    active = forms.ChoiceField(label=_("Status"), required=False, choices=ACTIVE_CHOICES)
    without_gl_code = forms.BooleanField(label=_("Only fees without a GL code"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(SchoolField, self.fields["school"]).queryset = School.objects.all()
        cast(
            forms.ModelChoiceField, self.fields["campaign"]
        ).queryset = Campaign.objects.select_related("school_year").order_by("-opens_on")

    def filters(self) -> dict[str, Any]:
        if not self.is_bound or not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "kind": data["kind"],
            "school": data["school"],
            "campaign": data["campaign"],
            "active": {"yes": True, "no": False}.get(data["active"]),
            "without_gl_code": data["without_gl_code"],
        }


# -- meal eligibility ------------------------------------------------------------------------


class EligibilityUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File from the nutrition office (CSV)"),
        # An empty file is refused (and logged) with the other malformed ones.
        allow_empty_file=True,
        help_text=_(
            "Two columns with a header row: student (the roster id or the state "
            "student id) and status (free, reduced or none)."
        ),
        error_messages={
            "required": _("Please choose the CSV file to import."),
        },
    )


# -- payments and refunds --------------------------------------------------------------------


class PaymentFilterForm(forms.Form):
    """The payments list's search and filters; read from the query string."""

    STATE_CHOICES = [("", _("Every state")), *Checkout.State.choices]

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        help_text=_(
            "A household id, a guardian's name or email, a payment reference, or a "
            "Stripe payment intent (pi_…)."
        ),
    )
    state = forms.ChoiceField(label=_("State"), required=False, choices=STATE_CHOICES)
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


class RefundForm(forms.Form):
    """Some or all of one paid line back to the family; the whole line by default.

    ``token`` is generated when the form is shown and posted back hidden: the
    service refuses a second refund with the same token (a double click). A post
    without a usable token gets a fresh one and is shown again, nothing refunded.
    Lunch lines have no ``fee_released``: lunch money given back is never owed again.
    """

    amount = DollarsField(
        label=_("Amount to refund, in dollars"),
        error_messages={"required": _("Please give the amount to refund.")},
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept with the refund and in the ledger."),
        error_messages={"required": _("Please give the reason for the refund.")},
    )
    fee_released = forms.BooleanField(
        label=_("The family no longer owes this fee"),
        required=False,
        initial=True,
        help_text=_(
            "Uncheck it when the family owes the fee again, for example when giving "
            "back a payment made twice."
        ),
    )
    token = forms.UUIDField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, room_cents: int, is_lunch: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"amount": room_cents, "token": uuid.uuid4()})
        super().__init__(*args, **kwargs)
        self.room_cents = room_cents
        if is_lunch:
            del self.fields["fee_released"]
        self.token_missing = False
        if self.is_bound and self.posted_token() is None:
            self.token_missing = True
            self.data = self.data.copy()
            self.data[self.add_prefix("token")] = str(uuid.uuid4())

    def posted_token(self) -> uuid.UUID | None:
        """The token as posted, if it is one (read before the form is validated, so
        that a repeated post is recognised even when its amount no longer fits)."""
        try:
            return uuid.UUID(str(self.data.get(self.add_prefix("token"), "")))
        except ValueError:
            return None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.token_missing:
            raise forms.ValidationError(
                _("This form was out of date. Please check the amount and send it again."),
                code="token",
            )
        return cleaned

    def clean_amount(self) -> int:
        amount: int = self.cleaned_data["amount"]
        if amount > self.room_cents:
            raise forms.ValidationError(
                _("At most %(amount)s of this line can still be refunded."),
                code="too_much",
                params={"amount": money(self.room_cents)},
            )
        return amount

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(self.fields["reason"].error_messages["required"])
        return reason
