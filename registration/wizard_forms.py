"""The re-registration wizard's steps.

Each form is built from the household as the database holds it (``WizardContext``),
never from answers to earlier steps. ``initial`` is what the district has on file;
``answers()`` turns cleaned data into the JSON a draft keeps. Forms clean and
convert; the wizard view saves through ``workflow.services``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from phonenumber_field.formfields import PhoneNumberField
from phonenumber_field.phonenumber import PhoneNumber
from phonenumber_field.widgets import RegionalPhoneNumberWidget

from config.school_field import ID_MAX_DIGITS, SchoolField
from config.widgets import LongSelect
from payments.cart import HouseholdCart
from payments.forms import LINES, LUNCH, CartFields
from registration.grades import GRADE_LABELS, PROMOTION_ORDER, grade_in_range
from registration.models import ContactPoint, Guardian, School
from registration.proof_files import proof_display_name, proof_refusal
from registration.templatetags.phones import phone
from workflow.models import PROOF_KINDS, EnrollmentDecision
from workflow.selectors import ChildRow, WizardContext
from workflow.visits import WALK_IN, VisitChoice, slot_choices, slot_label, slot_parse, slot_value

PROOF_TYPES = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}
PREFERENCE_FIELDS = [
    ("emergency", _("Emergencies and school closures")),
    ("attendance", _("Attendance")),
    ("general", _("General school news")),
]
CHANNELS = [("voice", _("Phone call")), ("sms", _("Text message")), ("email", _("Email"))]
CONSENT_KINDS = [
    ("directory", _("Directory information (name, grade, photo) may be shared")),
    ("media", _("Photos and video of my child may be published")),
    ("internet", _("My child may use the internet and school accounts")),
    ("local_trips", _("My child may go on walking trips near school")),
    ("emergency_care", _("The school may seek emergency medical treatment for my child")),
]


def proof_content_type(upload: UploadedFile) -> str | None:
    """The proof's type read from its first bytes, never from its name; None when it
    is not a PDF, JPEG or PNG."""
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for content_type, signatures in PROOF_TYPES.items():
        if any(head.startswith(signature) for signature in signatures):
            return content_type
    return None


# What a family may write about a child's health, per field.
HEALTH_MAX_LENGTH = 2000
# Bidirectional embeddings, overrides and isolates: invisible, they make a name or an
# address read differently on a page than the text that is stored.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class ControlCharacterValidator:
    """Refuses control characters (line breaks and tabs only in multi-line fields)
    and bidirectional controls in text a family types."""

    message = _("This text contains invisible control characters. Please type it again.")

    def __init__(self, *, multiline: bool) -> None:
        self.allowed = frozenset("\t\n\r") if multiline else frozenset()

    def __call__(self, value: Any) -> None:
        if not isinstance(value, str):
            return
        for char in value:
            if char == "\x00":
                continue  # Django's own validator refuses it, with its own message
            if char in BIDI_CONTROLS or (
                unicodedata.category(char) == "Cc" and char not in self.allowed
            ):
                raise forms.ValidationError(self.message, code="control_characters")


def _phone(value: Any) -> str:
    return value.as_e164 if isinstance(value, PhoneNumber) and value.is_valid() else ""


def _name_key(text: str) -> str:
    """Case, accents and spacing removed, so that "jose  perez" matches "José Pérez"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


class StepForm(forms.Form):
    """A wizard step. ``context`` is the household as the database holds it."""

    title: Any = ""
    offers_unchanged = True

    def __init__(self, *args: Any, context: WizardContext, **kwargs: Any) -> None:
        self.context = context
        kwargs["initial"] = {**self.initial_from_records(), **(kwargs.get("initial") or {})}
        super().__init__(*args, **kwargs)
        self.build()
        for field in self.fields.values():
            if isinstance(field, forms.CharField):
                multiline = isinstance(field.widget, forms.Textarea)
                field.validators.append(ControlCharacterValidator(multiline=multiline))

    def build(self) -> None:
        """Add the fields that depend on the household."""

    def initial_from_records(self) -> dict[str, Any]:
        return {}

    def answers(self) -> dict[str, Any]:
        """The cleaned data as JSON."""
        return {}

    def review_rows(self, answered: StepForm | None) -> list[dict[str, Any]]:
        """What the review page and the confirmation show for this step."""
        return review_rows(self, answered)

    def data_from_initial(self) -> dict[str, list[str]]:
        """The form's on-file values as submitted form data: "this is all still correct"."""
        data: dict[str, list[str]] = {}
        for name, field in self.fields.items():
            key = self.add_prefix(name)
            value = self.get_initial_for_field(field, name)
            if isinstance(field, forms.FileField):
                continue
            if isinstance(field, forms.BooleanField):
                if value:
                    data[key] = ["on"]
            elif isinstance(field, forms.MultipleChoiceField):
                data[key] = [str(v) for v in value or []]
            elif isinstance(value, PhoneNumber):
                data[key] = [value.as_e164 if value.is_valid() else str(value)]
            else:
                data[key] = ["" if value is None else str(value)]
        return data


# -- guardians' contacts ----------------------------------------------------------


def _contact_values(guardian: Guardian) -> dict[str, Any]:
    values: dict[str, Any] = {"email": "", "mobile": "", "home_phone": "", "work_phone": ""}
    for point in guardian.contact_points.all():
        if point.kind == ContactPoint.Kind.EMAIL:
            values["email"] = values["email"] or point.email
        elif point.label == ContactPoint.Label.MOBILE:
            values["mobile"] = values["mobile"] or point.phone
        elif point.label == ContactPoint.Label.WORK:
            values["work_phone"] = values["work_phone"] or point.phone
        else:
            values["home_phone"] = values["home_phone"] or point.phone
    return values


class ContactsForm(StepForm):
    title = _("Parents' and guardians' contacts")

    def build(self) -> None:
        for guardian in self.context.guardians:
            prefix = f"g{guardian.pk}_"
            self.fields[prefix + "email"] = forms.EmailField(
                label=_("Email address"),
                required=False,
                widget=forms.EmailInput(attrs={"autocomplete": "email"}),
            )
            self.fields[prefix + "mobile"] = PhoneNumberField(
                label=_("Mobile phone"),
                required=False,
                widget=RegionalPhoneNumberWidget(attrs={"autocomplete": "tel"}),
            )
            self.fields[prefix + "home_phone"] = PhoneNumberField(
                label=_("Home phone"),
                required=False,
                widget=RegionalPhoneNumberWidget(),
            )
            self.fields[prefix + "work_phone"] = PhoneNumberField(
                label=_("Work phone"),
                required=False,
                widget=RegionalPhoneNumberWidget(),
            )
            for name in ("email", "mobile", "home_phone", "work_phone"):
                self.fields[prefix + name].review_group = guardian.full_name  # type: ignore[attr-defined]

    def guardian_fields(self) -> list[tuple[Guardian, list[forms.BoundField]]]:
        return [
            (g, [self[f"g{g.pk}_{n}"] for n in ("email", "mobile", "home_phone", "work_phone")])
            for g in self.context.guardians
        ]

    def initial_from_records(self) -> dict[str, Any]:
        initial = {}
        for guardian in self.context.guardians:
            for name, value in _contact_values(guardian).items():
                initial[f"g{guardian.pk}_{name}"] = value
        return initial

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for guardian in self.context.guardians:
            prefix = f"g{guardian.pk}_"
            names = ("email", "mobile", "home_phone", "work_phone")
            if all(not cleaned.get(prefix + n) and prefix + n not in self.errors for n in names):
                self.add_error(
                    prefix + "mobile",
                    _("Give at least one phone number or email address for %(name)s.")
                    % {"name": guardian.full_name},
                )
        return cleaned

    def answers(self) -> dict[str, Any]:
        guardians = {}
        for guardian in self.context.guardians:
            prefix = f"g{guardian.pk}_"
            guardians[str(guardian.pk)] = {
                "email": self.cleaned_data.get(prefix + "email", ""),
                "mobile": _phone(self.cleaned_data.get(prefix + "mobile")),
                "home_phone": _phone(self.cleaned_data.get(prefix + "home_phone")),
                "work_phone": _phone(self.cleaned_data.get(prefix + "work_phone")),
            }
        return {"guardians": guardians}


# -- contact preferences ----------------------------------------------------------


class PreferencesForm(StepForm):
    title = _("How we contact you")

    def build(self) -> None:
        for guardian in self.context.guardians:
            for kind, kind_label in PREFERENCE_FIELDS:
                for channel, channel_label in CHANNELS:
                    field = forms.BooleanField(label=channel_label, required=False)
                    field.review_group = f"{guardian.full_name}, {kind_label}"  # type: ignore[attr-defined]
                    self.fields[f"g{guardian.pk}_{kind}_{channel}"] = field
            opt_out = forms.BooleanField(
                label=_("No attendance or general messages, only emergencies"), required=False
            )
            opt_out.review_group = guardian.full_name  # type: ignore[attr-defined]
            self.fields[f"g{guardian.pk}_opt_out"] = opt_out

    def groups(self) -> list[tuple[Guardian, list[tuple[Any, list[forms.BoundField]]], Any]]:
        """Per guardian: per kind of message, its channel checkboxes; then the opt-out."""
        return [
            (
                g,
                [
                    (label, [self[f"g{g.pk}_{kind}_{channel}"] for channel, _c in CHANNELS])
                    for kind, label in PREFERENCE_FIELDS
                ],
                self[f"g{g.pk}_opt_out"],
            )
            for g in self.context.guardians
        ]

    def initial_from_records(self) -> dict[str, Any]:
        initial: dict[str, Any] = {}
        for guardian in self.context.guardians:
            preference = getattr(guardian, "contact_preference", None)
            for kind, _label in PREFERENCE_FIELDS:
                for channel, _c in CHANNELS:
                    name = f"{kind}_{channel}"
                    default = kind == "emergency" or channel == "email"
                    initial[f"g{guardian.pk}_{name}"] = (
                        getattr(preference, name) if preference else default
                    )
            initial[f"g{guardian.pk}_opt_out"] = (
                preference.non_emergency_opt_out if preference else False
            )
        return initial

    def review_rows(self, answered: StepForm | None) -> list[dict[str, Any]]:
        """One row per guardian and kind of message: the channels chosen."""

        def chosen(values: Any, guardian: Guardian, kind: str) -> str:
            names = [str(label) for c, label in CHANNELS if values(f"g{guardian.pk}_{kind}_{c}")]
            return ", ".join(names) or str(_("None"))

        def on_file(name: str) -> Any:
            return self.get_initial_for_field(self.fields[name], name)

        def now(name: str) -> Any:
            return answered.cleaned_data.get(name) if answered else on_file(name)

        rows = []
        for guardian in self.context.guardians:
            for kind, kind_label in PREFERENCE_FIELDS:
                before, after = chosen(on_file, guardian, kind), chosen(now, guardian, kind)
                rows.append(
                    {
                        "label": f"{guardian.full_name}: {kind_label}",
                        "before": before,
                        "after": after,
                        "changed": before != after,
                    }
                )
            name = f"g{guardian.pk}_opt_out"
            before = display_value(self.fields[name], on_file(name))
            after = display_value(self.fields[name], now(name))
            rows.append(
                {
                    "label": f"{guardian.full_name}: {self.fields[name].label}",
                    "before": before,
                    "after": after,
                    "changed": before != after,
                }
            )
        return rows

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for guardian in self.context.guardians:
            if not any(cleaned.get(f"g{guardian.pk}_emergency_{c}") for c, _l in CHANNELS):
                self.add_error(
                    f"g{guardian.pk}_emergency_voice",
                    _("Choose at least one way to reach %(name)s in an emergency.")
                    % {"name": guardian.full_name},
                )
        return cleaned

    def answers(self) -> dict[str, Any]:
        guardians = {}
        for guardian in self.context.guardians:
            values = {
                f"{kind}_{channel}": bool(self.cleaned_data.get(f"g{guardian.pk}_{kind}_{channel}"))
                for kind, _l in PREFERENCE_FIELDS
                for channel, _c in CHANNELS
            }
            values["non_emergency_opt_out"] = bool(self.cleaned_data.get(f"g{guardian.pk}_opt_out"))
            guardians[str(guardian.pk)] = values
        return {"guardians": guardians}


# -- address ----------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    """Several files, chosen with a button in the page's language (the browser's own
    says "Choose Files" and "No file chosen" in the browser's language): the real
    input lies invisible over a ``<label>`` drawn as a button, so Tab, Space and
    Enter and a tap still reach it; ``static/js/file-picker.js`` writes the chosen
    files' names into a live region. With scripting turned off the browser's own
    input shows instead (``static/css/site.css``)."""

    allow_multiple_selected = True

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        field = super().render(name, value, attrs, renderer)
        input_id = self.build_attrs(self.attrs, attrs).get("id")
        if not input_id:
            return field
        return format_html(
            '<div class="file-picker" data-file-picker>'
            '<span class="file-picker-control">{}'
            '<label for="{}" class="button file-picker-button">{}</label></span>'
            '<span class="file-picker-chosen" id="{}_chosen" aria-live="polite" '
            'data-file-chosen data-none="{}" hidden></span>'
            "</div>",
            field,
            input_id,
            _("Choose files"),
            input_id,
            _("No file chosen"),
        )


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        files = data if isinstance(data, (list, tuple)) else [data] if data else []
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class VisitChoiceField(forms.ChoiceField):
    """The family's visit to the school office: walk in, or a slot of the school's
    office hours. Only free slots are offered; any slot of the office hours is
    valid here, and whether it still has room is checked when it is booked."""

    def __init__(self, *, context: WizardContext, **kwargs: Any) -> None:
        self.context = context
        # A callable: the slots are read only when the choices are shown.
        super().__init__(choices=self.visit_choices, **kwargs)

    def visit_choices(self) -> list[Any]:
        # Short enough for a closed drop-down on a 360 px phone, in every language.
        walk_in = (WALK_IN, _("Walk in (no appointment)"))
        return [walk_in, *slot_choices(self.context.visit_slots)]

    def valid_value(self, value: Any) -> bool:
        if value == WALK_IN:
            return True
        starts_at = slot_parse(str(value))
        return starts_at is not None and self.context.visit_options.offers(starts_at)


class AddressForm(StepForm):
    title = _("Home address")
    MOVED_CHOICES = [
        ("no", _("We still live at this address")),
        ("yes", _("We have moved")),
    ]

    moved = forms.ChoiceField(
        label=_("Do you still live at this address?"),
        choices=MOVED_CHOICES,
        widget=forms.RadioSelect,
    )
    street1 = forms.CharField(
        label=_("Street address"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "address-line1"}),
    )
    street2 = forms.CharField(
        label=_("Apartment, suite, unit"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "address-line2"}),
    )
    city = forms.CharField(
        label=_("City"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "address-level2"}),
    )
    state = forms.CharField(
        label=_("State"),
        max_length=2,
        required=False,
        help_text=_("Two letters, for example CA."),
        widget=forms.TextInput(attrs={"autocomplete": "address-level1", "size": 3}),
    )
    postal_code = forms.RegexField(
        label=_("ZIP code"),
        regex=r"^\d{5}(-\d{4})?$",
        required=False,
        error_messages={"invalid": _("A ZIP code has five digits, for example 94040.")},
        widget=forms.TextInput(attrs={"autocomplete": "postal-code", "inputmode": "numeric"}),
    )
    proofs = MultipleFileField(
        label=_("Proofs of your new address"),
        required=False,
        help_text=_(
            "A lease, a mortgage statement or a recent utility bill: PDF, JPEG or PNG, "
            "at most 10 MB each. You can take a photo with your phone."
        ),
        widget=MultipleFileInput(attrs={"accept": "application/pdf,image/jpeg,image/png"}),
    )
    remove_proofs = forms.MultipleChoiceField(
        label=_("Remove"), required=False, widget=forms.CheckboxSelectMultiple
    )

    REQUIRED_WHEN_MOVED = ("street1", "city", "state", "postal_code")

    def build(self) -> None:
        for name in (*self.REQUIRED_WHEN_MOVED, "proofs"):
            self.fields[name].conditional = True  # type: ignore[attr-defined]
        self.fields["remove_proofs"].choices = [
            (str(p.pk), p.original_name) for p in self.context.proofs
        ]
        self.fields["state"].initial = self.context.household.state
        school = self.context.visit_school
        self.fields["visit"] = VisitChoiceField(
            context=self.context,
            label=_("When will you come to the school office?"),
            required=False,
            help_text=(
                _(
                    "Bring the originals of at least two proofs of your new address to the "
                    "office of %(school)s."
                )
                % {"school": escape(school.name)}
                if school is not None
                else _("Bring the originals of at least two proofs of your new address.")
            ),
        )
        self.fields["visit"].conditional = True  # type: ignore[attr-defined]

    @property
    def proof_kinds(self) -> list[Any]:
        """The proofs the school office accepts, for the page to list."""
        return [label for _kind, label in PROOF_KINDS]

    @property
    def offers_slots(self) -> bool:
        return self.context.visit_options.has_slots

    def _visit_on_file(self) -> str:
        visit = self.context.address_visit
        if visit is None or visit.starts_at is None:
            return WALK_IN
        return slot_value(visit.starts_at)

    def initial_from_records(self) -> dict[str, Any]:
        request = self.context.address_request
        if request is None:
            return {"moved": "no", "visit": WALK_IN}
        return {
            "moved": "yes",
            "street1": request.street1,
            "street2": request.street2,
            "city": request.city,
            "state": request.state_code,
            "postal_code": request.postal_code,
            # Read only when the field is shown.
            "visit": self._visit_on_file,
        }

    def data_from_initial(self) -> dict[str, list[str]]:
        return {self.add_prefix("moved"): ["no"]}

    def clean_state(self) -> str:
        value: str = self.cleaned_data.get("state", "").strip().upper()
        if value and (len(value) != 2 or not value.isalpha()):
            raise forms.ValidationError(_("Use the two-letter state code, for example CA."))
        return value

    def clean_proofs(self) -> list[UploadedFile]:
        files: list[UploadedFile] = self.cleaned_data.get("proofs") or []
        limit = settings.ADDRESS_PROOF_MAX_BYTES
        for upload in files:
            if upload.size is not None and upload.size > limit:
                raise forms.ValidationError(
                    _("%(name)s is larger than %(limit)s. Please send a smaller file or a photo.")
                    % {"name": upload.name, "limit": filesizeformat(limit)}
                )
            content_type = proof_content_type(upload)
            if content_type is None:
                raise forms.ValidationError(
                    _("%(name)s is not a PDF, JPEG or PNG file.") % {"name": upload.name}
                )
            refusal = proof_refusal(upload, content_type)
            if refusal is not None:
                raise forms.ValidationError(refusal % {"name": upload.name})
            upload.content_type = content_type
            upload.name = proof_display_name(upload.name or "", content_type)
        return files

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("moved") != "yes":
            return cleaned
        for name in self.REQUIRED_WHEN_MOVED:
            if not cleaned.get(name) and name not in self.errors:
                self.add_error(name, _("Please fill in your new address."))
        if not cleaned.get("visit") and "visit" not in self.errors:
            cleaned["visit"] = WALK_IN
        household = self.context.household
        same = all(
            (cleaned.get(n) or "").strip().casefold() == (getattr(household, n) or "").casefold()
            for n in ("street1", "street2", "city", "postal_code")
        )
        if same and "street1" not in self.errors:
            self.add_error("street1", _("This is the address we already have."))
        kept = len(self.context.proofs) - len(cleaned.get("remove_proofs") or [])
        total = kept + len(cleaned.get("proofs") or [])
        if "proofs" not in self.errors:
            if total < 1:
                self.add_error("proofs", _("Please add at least one proof of your new address."))
            elif total > settings.ADDRESS_PROOF_MAX_FILES:
                self.add_error(
                    "proofs",
                    _("You can add at most %(count)s files.")
                    % {"count": settings.ADDRESS_PROOF_MAX_FILES},
                )
        return cleaned

    def review_rows(self, answered: StepForm | None) -> list[dict[str, Any]]:
        household = self.context.household
        before = ", ".join(household.address_lines) or "—"
        after = before
        if answered is not None and answered.cleaned_data.get("moved") == "yes":
            data = answered.cleaned_data
            city_line = " ".join(
                p for p in (f"{data.get('city')},", data.get("state"), data.get("postal_code")) if p
            )
            after = ", ".join(p for p in (data.get("street1"), data.get("street2"), city_line) if p)
        rows = [
            {
                "label": str(_("Home address")),
                "before": before,
                "after": after,
                "changed": before != after,
            }
        ]
        if before != after:
            rows.append(
                {
                    "label": str(_("Proofs of your new address")),
                    "before": "",
                    "after": ", ".join(p.original_name for p in self.context.proofs) or "—",
                    "changed": True,
                }
            )
            rows.append(
                {
                    "label": str(_("Visit to the school office")),
                    "before": "",
                    "after": self._visit_label(answered),
                    "changed": True,
                }
            )
        return rows

    def _visit_label(self, answered: StepForm | None) -> str:
        value = answered.cleaned_data.get("visit") if answered is not None else None
        starts_at = slot_parse(value) if value and value != WALK_IN else None
        school = self.context.visit_school
        when = slot_label(starts_at) if starts_at else str(_("Walk in during office hours"))
        return f"{when} · {school.name}" if school is not None else when

    def visit_choice(self) -> VisitChoice | None:
        """The visit the family chose, for ``address_change_save``: None when they
        still live at the address on file (or have no school to visit)."""
        school = self.context.visit_school
        if self.cleaned_data.get("moved") != "yes" or school is None:
            return None
        value = self.cleaned_data.get("visit") or WALK_IN
        return VisitChoice(school=school, starts_at=None if value == WALK_IN else slot_parse(value))

    def answers(self) -> dict[str, Any]:
        if self.cleaned_data.get("moved") != "yes":
            return {"moved": False}
        return {
            "moved": True,
            **{n: self.cleaned_data.get(n, "").strip() for n in ("street1", "street2", "city")},
            "state": self.cleaned_data.get("state", ""),
            "postal_code": self.cleaned_data.get("postal_code", ""),
            "visit": self.cleaned_data.get("visit") or WALK_IN,
        }


# -- emergency contacts -----------------------------------------------------------

EMERGENCY_SLOTS = 3


class EmergencyForm(StepForm):
    title = _("Emergency contacts")

    def build(self) -> None:
        for slot in range(1, EMERGENCY_SLOTS + 1):
            self.fields[f"c{slot}_name"] = forms.CharField(
                label=_("Name"), max_length=200, required=False
            )
            self.fields[f"c{slot}_relationship"] = forms.CharField(
                label=_("Relationship to the children"),
                max_length=100,
                required=False,
                help_text=_("For example: aunt, neighbour, family friend."),
            )
            self.fields[f"c{slot}_phone"] = PhoneNumberField(
                label=_("Phone"),
                required=False,
                widget=RegionalPhoneNumberWidget(),
            )
            for name in ("name", "relationship", "phone"):
                self.fields[f"c{slot}_{name}"].review_group = _(  # type: ignore[attr-defined]
                    "Contact %(number)s"
                ) % {"number": slot}

    def slots(self) -> list[tuple[int, list[forms.BoundField]]]:
        return [
            (slot, [self[f"c{slot}_{n}"] for n in ("name", "relationship", "phone")])
            for slot in range(1, EMERGENCY_SLOTS + 1)
        ]

    def initial_from_records(self) -> dict[str, Any]:
        initial = {}
        for slot, contact in enumerate(self.context.emergency_contacts[:EMERGENCY_SLOTS], 1):
            initial[f"c{slot}_name"] = contact.name
            initial[f"c{slot}_relationship"] = contact.relationship
            initial[f"c{slot}_phone"] = contact.phone
        return initial

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        filled = 0
        for slot in range(1, EMERGENCY_SLOTS + 1):
            name, phone = cleaned.get(f"c{slot}_name"), cleaned.get(f"c{slot}_phone")
            relationship = cleaned.get(f"c{slot}_relationship")
            if f"c{slot}_phone" in self.errors:
                filled += 1
                continue
            if name and not phone:
                self.add_error(f"c{slot}_phone", _("Please give a phone number for this contact."))
            elif (phone or relationship) and not name:
                self.add_error(f"c{slot}_name", _("Please give this contact's name."))
            if name or phone:
                filled += 1
        if not filled:
            self.add_error(
                "c1_name", _("Please give at least one person we can call in an emergency.")
            )
        return cleaned

    def answers(self) -> dict[str, Any]:
        contacts = []
        for slot in range(1, EMERGENCY_SLOTS + 1):
            if self.cleaned_data.get(f"c{slot}_name"):
                contacts.append(
                    {
                        "name": self.cleaned_data[f"c{slot}_name"].strip(),
                        "relationship": self.cleaned_data.get(f"c{slot}_relationship", "").strip(),
                        "phone": _phone(self.cleaned_data.get(f"c{slot}_phone")),
                    }
                )
        return {"contacts": contacts}


# -- one child --------------------------------------------------------------------


class SchoolChoiceField(forms.TypedChoiceField):
    """A school of the district, checked by its id: a large district's families are
    offered a short list (``ChildRow.offered_schools``), read only when the field is
    shown or checked."""

    def __init__(self, *, child: ChildRow, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.child = child

    def valid_value(self, value: Any) -> bool:
        text = str(value)
        return text == "" or (
            text.isdigit()
            and len(text) <= ID_MAX_DIGITS
            and self.child.school(int(text)) is not None
        )


class OtherSchoolField(SchoolField):
    """Any school of a large district, typed by name, for a family whose school is not
    among those listed. Always a search box; cleans into the ``School`` or ``None``."""

    search_hint = ""
    default_error_messages = {
        "invalid_choice": _("No school of the district is named “%(text)s”."),
    }

    def listed(self) -> None:
        return None


class ChildForm(StepForm):
    """Next year for one child. Read-only (no fields) when another household decides
    for the child, or when the signed-in guardian holds no education rights."""

    DECISION_CHOICES = [
        ("returning", _("Returning next year")),
        ("leaving", _("Leaving the district")),
    ]

    def __init__(self, *args: Any, child: ChildRow, **kwargs: Any) -> None:
        self.child = child
        super().__init__(*args, **kwargs)

    @property
    def title(self) -> str:  # type: ignore[override]
        return self.child.student.full_name

    @property
    def read_only(self) -> bool:
        return not self.child.may_decide

    def build(self) -> None:
        if self.read_only:
            return
        student = self.child.student
        self.fields["decision"] = forms.ChoiceField(
            label=_("Will %(name)s attend our schools next year?") % {"name": student.given_name},
            choices=self.DECISION_CHOICES,
            widget=forms.RadioSelect,
        )
        self.fields["next_school"] = SchoolChoiceField(
            child=self.child,
            label=_("School next year"),
            # Read when the list is shown or checked: a district has a thousand
            # schools, and the review builds every child's form for its summary.
            choices=lambda: [("", "—")] + [(s.pk, s.name) for s in self.child.offered_schools],
            coerce=int,
            required=False,
            widget=LongSelect,
        )
        # Shown only when the district has more schools than the list offers.
        self.fields["other_school"] = OtherSchoolField(
            School.objects.all(),
            label=_("Another school"),
            help_text=_(
                "If the school is not in the list, type its name here. "
                "Leave this empty to keep the school chosen above."
            ),
        )
        self.fields["next_grade"] = forms.ChoiceField(
            label=_("Grade next year"),
            choices=[("", "—")] + [(g, GRADE_LABELS[g]) for g in PROMOTION_ORDER],
            required=False,
        )
        self.fields["leaving_reason"] = forms.ChoiceField(
            label=_("Why is %(name)s leaving?") % {"name": student.given_name},
            choices=[("", "—"), *EnrollmentDecision.LeavingReason.choices],
            required=False,
        )
        self.fields["leaving_destination"] = forms.CharField(
            label=_("New school or district"),
            max_length=200,
            required=False,
            help_text=_("So that we can send the school records."),
        )
        self.fields["allergies"] = forms.CharField(
            label=_("Allergies"),
            required=False,
            max_length=HEALTH_MAX_LENGTH,
            widget=forms.Textarea(attrs={"rows": 2}),
        )
        self.fields["medications"] = forms.CharField(
            label=_("Medications taken at school"),
            required=False,
            max_length=HEALTH_MAX_LENGTH,
            widget=forms.Textarea(attrs={"rows": 2}),
        )
        self.fields["conditions"] = forms.CharField(
            label=_("Medical conditions the school should know about"),
            required=False,
            max_length=HEALTH_MAX_LENGTH,
            widget=forms.Textarea(attrs={"rows": 2}),
        )
        for kind, label in CONSENT_KINDS:
            self.fields[f"consent_{kind}"] = forms.BooleanField(label=label, required=False)
        for name in (
            "next_school",
            "other_school",
            "next_grade",
            "leaving_reason",
            "leaving_destination",
        ):
            self.fields[name].conditional = True  # type: ignore[attr-defined]
        for name in ("allergies", "medications", "conditions"):
            # Marked in the signed content, so that pages for roles that must not see
            # health data leave these rows out whatever the language.
            self.fields[name].sensitive = True  # type: ignore[attr-defined]

    def review_rows(self, answered: StepForm | None) -> list[dict[str, Any]]:
        if not self.read_only:
            return review_rows(self, answered)
        decision = self.child.decision
        shown = decision.get_state_display() if decision else _("Not decided yet")
        return [
            {
                "label": str(_("Next year")),
                "before": "",
                "after": str(shown),
                "changed": False,
                "note": str(
                    _("Decided by the child's other household.")
                    if not self.child.is_primary
                    else _("Another parent or guardian with education rights decides.")
                ),
            }
        ]

    def consent_fields(self) -> list[forms.BoundField]:
        return [self[f"consent_{kind}"] for kind, _label in CONSENT_KINDS]

    def initial_from_records(self) -> dict[str, Any]:
        student = self.child.student
        health = getattr(student, "health", None)
        initial: dict[str, Any] = {
            "allergies": health.allergies if health else "",
            "medications": health.medications if health else "",
            "conditions": health.conditions if health else "",
        }
        for kind, _label in CONSENT_KINDS:
            initial[f"consent_{kind}"] = self.child.consents.get(kind, False)
        decision = self.child.decision
        if decision is not None and decision.state != EnrollmentDecision.State.PENDING:
            initial.update(
                decision="returning" if decision.returning else "leaving",
                next_school=decision.next_school_id or "",
                next_grade=decision.next_grade,
                leaving_reason=decision.leaving_reason,
                leaving_destination=decision.leaving_destination,
            )
        elif self.child.next_grade:
            # The child's own school when it teaches next year's grade: decided without
            # reading every school of the district, as ``ChildRow.schools`` would.
            current = student.school
            same_school = bool(
                current.low_grade
                and current.high_grade
                and grade_in_range(self.child.next_grade, current.low_grade, current.high_grade)
            ) or any(s.pk == current.pk for s in self.child.schools)
            school = current if same_school else (self.child.schools or [None])[0]
            initial.update(
                decision="returning",
                next_school=school.pk if school else "",
                next_grade=self.child.next_grade,
            )
        else:  # after the last grade
            initial.update(decision="leaving", leaving_reason="graduating")
        return initial

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.read_only:
            return cleaned
        # A school typed in "Another school" is the one chosen; the answers keep its id
        # as the school next year, like a school chosen from the list.
        other = cleaned.pop("other_school", None)
        school_field = "next_school"
        if other is not None and cleaned.get("decision") == "returning":
            self.child.school_offer().remember(other)
            cleaned["next_school"] = other.pk
            school_field = "other_school"
            if "next_school" in self.errors:
                del self.errors["next_school"]
        elif cleaned.get("decision") != "returning" and "other_school" in self.errors:
            del self.errors["other_school"]  # a child who leaves needs no school here
        if cleaned.get("decision") == "returning":
            for name in ("next_school", "next_grade"):
                answered = name in self.errors or (
                    name == "next_school" and "other_school" in self.errors
                )
                if not cleaned.get(name) and not answered:
                    self.add_error(name, _("Please choose."))
            chosen = cleaned.get("next_school")
            school = self.child.school(chosen) if chosen else None
            grade = cleaned.get("next_grade")
            if school is not None and grade and not school.teaches(grade):
                self.add_error(
                    school_field,
                    _("%(school)s does not teach %(grade)s. Please choose another school.")
                    % {"school": school.name, "grade": GRADE_LABELS.get(grade, grade)},
                )
        elif cleaned.get("decision") == "leaving":
            reason = cleaned.get("leaving_reason")
            if not reason:
                self.add_error("leaving_reason", _("Please choose a reason."))
            elif reason not in ("graduating", "other") and not cleaned.get("leaving_destination"):
                self.add_error(
                    "leaving_destination", _("Please tell us the new school or district.")
                )
        return cleaned

    def answers(self) -> dict[str, Any]:
        if self.read_only:
            return {"student": self.child.student.pk, "read_only": True}
        data = self.cleaned_data
        returning = data.get("decision") == "returning"
        return {
            "student": self.child.student.pk,
            "read_only": False,
            "returning": returning,
            "next_school": data.get("next_school") if returning else None,
            "next_grade": data.get("next_grade", "") if returning else "",
            "leaving_reason": "" if returning else data.get("leaving_reason", ""),
            "leaving_destination": "" if returning else data.get("leaving_destination", ""),
            "health": {
                n: data.get(n, "").strip() for n in ("allergies", "medications", "conditions")
            },
            "consents": {kind: bool(data.get(f"consent_{kind}")) for kind, _l in CONSENT_KINDS},
        }


# -- acknowledgements and signature -------------------------------------------------


class AcknowledgementsForm(StepForm):
    title = _("Acknowledgements")
    offers_unchanged = False

    def build(self) -> None:
        for ack in self.context.acknowledgements:
            self.fields[f"ack_{ack.pk}"] = forms.BooleanField(
                label=_("I have read and accept: %(title)s")
                % {"title": ack.title_in(self.context.language)},
                required=ack.required,
                error_messages={"required": _("Please read and accept this document.")},
            )

    def review_rows(self, answered: StepForm | None) -> list[dict[str, Any]]:
        accepted = set((answered.answers() if answered else {}).get("accepted", []))
        return [
            {
                "label": f"{ack.title_in(self.context.language)} ({_('version')} {ack.version})",
                "before": "",
                "after": str(_("Accepted") if ack.pk in accepted else _("Not accepted")),
                "changed": False,
            }
            for ack in self.context.acknowledgements
        ]

    def documents(self) -> list[tuple[Any, str, str, forms.BoundField]]:
        """Each document, its title and text in the family's language, and its checkbox."""
        language = self.context.language
        return [
            (ack, ack.title_in(language), ack.body_in(language), self[f"ack_{ack.pk}"])
            for ack in self.context.acknowledgements
        ]

    def answers(self) -> dict[str, Any]:
        return {
            "accepted": [
                ack.pk
                for ack in self.context.acknowledgements
                if self.cleaned_data.get(f"ack_{ack.pk}")
            ]
        }


# -- fees -------------------------------------------------------------------------------


class FeesForm(CartFields, StepForm):
    """The household's open fees (``payments.cart``), before the review. "Pay now"
    (``action=pay``) checks the cart and starts a payment; "Continue" goes on
    without paying, and its draft keeps only that choice: nothing about money is
    ever read back from a draft. Whether the campaign lets the family continue
    before paying is decided by the view."""

    title = _("Fees")
    offers_unchanged = False
    PAY = "pay"
    CONTINUE = "continue"

    def __init__(self, *args: Any, cart: HouseholdCart, **kwargs: Any) -> None:
        self.cart = cart
        super().__init__(*args, **kwargs)

    def build(self) -> None:
        self.cart_build()

    @property
    def paying(self) -> bool:
        return self.is_bound and self.data.get(self.add_prefix("action")) == self.PAY

    @property
    def nothing_due(self) -> bool:
        """Every fee is paid or waived: no fixed fee is open, and the family has paid
        or been waived something (a fee, or money on a lunch account). The step then
        only says so and goes on; more lunch money, which is never due, is added
        from the fees page. A household whose only fee is a lunch account it has
        not used yet is still offered it here."""
        cart = self.cart
        if any(not line.is_lunch for line in cart.lines):
            return False
        return any(child.settled or child.lunch_full for child in cart.children) or any(
            line.settled_cents > 0 for line in cart.lines
        )

    @property
    def offers_payment(self) -> bool:
        """The step shows the cart with "Pay now" (and "Continue without paying")."""
        return bool(self.cart.lines) and not self.nothing_due

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.paying:
            self.cart_clean(cleaned, require_choice=True)
        else:
            # Going on without paying: what was ticked or typed does not matter.
            for name in [n for n in self.errors if n == LINES or n.startswith(LUNCH)]:
                del self.errors[name]
        return cleaned

    def draft_data(self) -> dict[str, list[str]]:
        return {self.add_prefix("action"): [self.CONTINUE]}

    def answers(self) -> dict[str, Any]:
        return {"action": self.CONTINUE}

    def review_rows(self, answered: StepForm | None) -> list[dict[str, Any]]:
        """Where the required fees stand when the family reviews (from the ledger)."""
        shown: Any
        if not self.cart.has_required_fees:
            shown = _("None this year")
        elif self.cart.required_due_cents:
            shown = _("%(amount)s still due") % {"amount": self.cart.required_due_display}
        else:
            shown = _("Paid or waived")
        return [
            {"label": str(_("Required fees")), "before": "", "after": str(shown), "changed": False}
        ]


class ReviewForm(StepForm):
    title = _("Review and sign")
    offers_unchanged = False

    signed_name = forms.CharField(
        label=_("Your full name"),
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    attest = forms.BooleanField(
        label=_(
            "I confirm that the information above is true and complete, and that I may "
            "register these children."
        ),
        error_messages={"required": _("Please confirm before signing.")},
    )
    content_sha256 = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def build(self) -> None:
        # Help texts are shown as HTML (includes/field.html): escape the name.
        self.fields["signed_name"].help_text = _(
            "Type your name as we have it: %(name)s. This is your signature."
        ) % {"name": escape(self.context.guardian.full_name)}

    def clean_signed_name(self) -> str:
        typed: str = self.cleaned_data["signed_name"].strip()
        guardian = self.context.guardian
        words = set(_name_key(typed).split())
        expected = set(_name_key(f"{guardian.given_name} {guardian.family_name}").split())
        if not expected <= words:
            raise forms.ValidationError(
                _("Please type your full name as we have it: %(name)s.")
                % {"name": guardian.full_name}
            )
        return " ".join(typed.split())


# -- review -------------------------------------------------------------------------


def display_value(field: forms.Field, value: Any) -> str:
    """A field's value as the review page and the confirmation show it."""
    if isinstance(field, forms.BooleanField):
        return str(_("Yes") if value else _("No"))
    if value in (None, "", []):
        return "—"
    if isinstance(field, SchoolChoiceField):
        school = field.child.school(int(value)) if str(value).isdigit() else None
        return school.name if school is not None else str(value)
    if isinstance(field, forms.ChoiceField):
        labels = {str(k): str(v) for k, v in field.choices}
        return labels.get(str(value), str(value))
    if isinstance(value, PhoneNumber):
        return phone(value)
    return str(value)


def review_rows(form: StepForm, answered: StepForm | None) -> list[dict[str, Any]]:
    """Last year's value and this year's, field by field. ``form`` is unbound (it
    holds what is on file); ``answered`` holds the saved answers, cleaned."""
    rows = []
    for name, field in form.fields.items():
        skipped = isinstance(field, (forms.FileField, forms.MultipleChoiceField))
        if skipped or field.widget.is_hidden:
            continue
        before = display_value(field, form.get_initial_for_field(field, name))
        after = display_value(field, answered.cleaned_data.get(name)) if answered else before
        if before == after == "—":
            continue  # nothing on file, nothing given
        group = getattr(field, "review_group", "")
        row = {
            "label": f"{group}: {field.label}" if group else str(field.label),
            "before": before,
            "after": after,
            "changed": before != after,
        }
        if getattr(field, "sensitive", False):
            row["sensitive"] = True
        rows.append(row)
    return rows
