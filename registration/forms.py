"""Forms clean and convert what people type; they do not decide."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _

from registration.activation import code_normalise
from registration.models import User
from registration.services import email_in_use
from registration.wizard_forms import ControlCharacterValidator

DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y"]


class ActivationForm(forms.Form):
    code = forms.CharField(
        label=_("Activation code"),
        max_length=40,
        help_text=_(
            "The 16 letters and numbers in your letter or email, for example 7KQM-3TXA-PW9R-4HCF."
        ),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "autocorrect": "off",
            }
        ),
    )
    birth_date = forms.DateField(
        label=_("Date of birth of one of your children"),
        help_text=_("Students: your own date of birth."),
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "off"}, format="%Y-%m-%d"),
    )

    def clean_code(self) -> str:
        code = code_normalise(self.cleaned_data["code"])
        if code is None:
            raise forms.ValidationError(
                _("An activation code has 16 letters and numbers, in four groups of four."),
                code="format",
            )
        return code

    def clean_birth_date(self) -> datetime.date:
        value: datetime.date = self.cleaned_data["birth_date"]
        if value > datetime.date.today():
            raise forms.ValidationError(_("This date is in the future."), code="future")
        return value


class AccountForm(forms.Form):
    EMAIL_TAKEN = _(
        "This email address already belongs to an account. Each parent or guardian "
        "needs their own address. If the account is yours, sign in instead."
    )

    email = forms.EmailField(
        label=_("Email address"),
        help_text=_("You will sign in with it, and we will send a link to check it."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        help_text=_("At least 10 characters; not only numbers, not a common password."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    language = forms.ChoiceField(
        label=_("Language for emails and letters"),
        # Each language named in itself, so that a reader finds their own.
        choices=[
            (code, get_language_info(code)["name_local"].capitalize())
            for code, _name in settings.LANGUAGES
        ],
        widget=forms.RadioSelect,
    )

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"]
        if email_in_use(email):
            raise forms.ValidationError(self.EMAIL_TAKEN, code="taken")
        return email

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords are not the same."))
        elif first:
            try:
                # Measured against the address too: no password like the email.
                candidate = User(email=cleaned.get("email", ""), username=cleaned.get("email", ""))
                password_validation.validate_password(first, user=candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class CustodyNoteForm(forms.Form):
    """The custody note of one guardian and child, written by staff."""

    note = forms.CharField(
        label=_("Custody note"),
        required=False,
        max_length=2000,
        help_text=_(
            "Court orders and custody arrangements the school must know, such as who "
            "may not pick the child up. Leave empty when there are none."
        ),
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[ControlCharacterValidator(multiline=True)],
    )

    def __init__(self, *args: Any, child: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One form per child on a page: each label names its child.
        self.fields["note"].label = _("Custody note for %(child)s") % {"child": child}
