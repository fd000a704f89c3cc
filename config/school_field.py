"""The school filter of the staff pages, for districts of three schools or of
thousands.

Up to ``SCHOOL_SELECT_MAX`` schools it is a drop-down of their names, as before.
Above that a drop-down is too long to use and most of the page's time goes into
writing its options, so the field becomes a search box: the member of staff types a
school's name (or part of it) or its number, and the server finds the one school
meant among those the user may see. Links with ``?school=<id>`` keep working either
way, and the box then shows the school's name.

Rendering reads at most ``SCHOOL_SELECT_MAX + 1`` schools; only resolving a typed
name reads the names of the schools the user may see.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.forms.boundfield import BoundField
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from config.widgets import LongSelect

# Above this many schools the field is a search box instead of a drop-down.
SCHOOL_SELECT_MAX = 60
# Names listed when what was typed matches several schools.
AMBIGUOUS_NAMES_SHOWN = 5
# What is read of a typed text, and shown back in a message.
TEXT_MAX_LENGTH = 200
ECHO_MAX_LENGTH = 80
# A primary key as typed in a link; longer digit strings cannot be one.
ID_MAX_DIGITS = 18
# A school's number alone ("17"), or after its name as the field lists schools that
# share a name ("Lincoln Elementary (17)").
NUMBERED = re.compile(r"(?:(?P<name>.*?)\s*\()?(?P<id>[0-9]+)(?(name)\)|)")


def name_key(text: str) -> str:
    """Case, accents and spacing removed: "  saint-josé  high" and "Saint-Jose High"
    have the same key."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def typed_text(value: Any) -> str:
    """What was typed, at most ``TEXT_MAX_LENGTH`` characters long and without control
    or formatting characters (a right-to-left override would turn the message that
    quotes it around)."""
    text = "".join(c for c in str(value) if unicodedata.category(c) not in ("Cc", "Cf"))
    return text.strip()[:TEXT_MAX_LENGTH]


@dataclass
class _Reads:
    """What a field read of its queryset: the schools of its drop-down, and each
    text it resolved (or the error it gave)."""

    queryset: QuerySet[Any]
    listed: list[tuple[Any, str]] | None = None
    listed_read: bool = False
    resolved: dict[str, Any] = dataclass_field(default_factory=dict)


class SchoolSearchInput(forms.TextInput):
    """The search box that stands in for the drop-down of a long list of schools."""

    input_type = "search"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            attrs={
                "autocomplete": "off",
                "maxlength": str(TEXT_MAX_LENGTH),
                "spellcheck": "false",
                **(attrs or {}),
            }
        )


class SchoolBoundField(BoundField):
    """Renders the field as a drop-down or as a search box, as the number of schools
    the user may see decides."""

    field: SchoolField

    def __init__(self, form: forms.BaseForm, field: SchoolField, name: str) -> None:
        self._help_text: Any = ""
        super().__init__(form, field, name)

    @property
    def help_text(self) -> Any:
        if self.field.listed() is not None or not self.field.search_hint:
            return self._help_text
        hint = str(self.field.search_hint)
        return f"{self._help_text} {hint}" if self._help_text else hint

    @help_text.setter
    def help_text(self, text: Any) -> None:
        self._help_text = text

    def as_widget(
        self, widget: forms.Widget | None = None, attrs: Any = None, only_initial: bool = False
    ) -> SafeString:
        if widget is None and self.field.listed() is None:
            widget = SchoolSearchInput()
            widget.is_required = self.field.required
        return super().as_widget(widget, attrs, only_initial)

    @property
    def data(self) -> Any:
        """What was sent; the initial school's id when its name was sent back as the
        box showed it (two schools may share that name)."""
        data = super().data
        initial = self.initial
        if (
            isinstance(initial, self.field.visible().model)
            and isinstance(data, str)
            and name_key(data) == name_key(str(initial.name))
        ):
            return str(initial.pk)
        return data

    def value(self) -> Any:
        if self.field.listed() is not None:
            return super().value()
        if self.form.is_bound and not self.field.disabled:
            return self.field.text_of(self.data)
        return self.field.text_of(self.initial)


class SchoolField(forms.ModelChoiceField):
    """A school among ``queryset`` (the schools the user may see), chosen from a
    drop-down or, with more than ``SCHOOL_SELECT_MAX`` of them, typed by name or
    number. Cleans into the ``School`` or ``None``."""

    widget = LongSelect
    # Added to the help text when the field is a search box.
    search_hint = _("Type the school's name or number.")
    default_error_messages = {
        "invalid_choice": _("No school of yours is named “%(text)s”."),
        "ambiguous": _("%(count)s schools match “%(text)s”: %(names)s. Type more of the name."),
    }

    def __init__(self, queryset: QuerySet[Any], **kwargs: Any) -> None:
        kwargs.setdefault("label", _("School"))
        kwargs.setdefault("required", False)
        super().__init__(queryset, **kwargs)

    def visible(self) -> QuerySet[Any]:
        """The schools the user may see, as given."""
        return cast(QuerySet[Any], self.queryset)

    def schools(self) -> QuerySet[Any]:
        """The schools the user may see, with only what the field reads, by name."""
        return self.visible().only("pk", "name").order_by("name", "pk")

    def _reads(self) -> _Reads:
        """What was read for the current queryset (a new queryset reads again)."""
        reads: _Reads | None = getattr(self, "_reads_cache", None)
        if reads is None or reads.queryset is not self.visible():
            reads = self._reads_cache = _Reads(self.visible())
        return reads

    def get_bound_field(self, form: forms.BaseForm, field_name: str) -> BoundField:
        return SchoolBoundField(form, self, field_name)

    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)

    def listed(self) -> list[tuple[Any, str]] | None:
        """The schools' (id, name) when they are few enough for a drop-down (whose
        choices they become), or ``None`` when the field is a search box. One query,
        made once."""
        reads = self._reads()
        if not reads.listed_read:
            rows = list(self.schools().values_list("pk", "name")[: SCHOOL_SELECT_MAX + 1])
            reads.listed_read = True
            if len(rows) <= SCHOOL_SELECT_MAX:
                reads.listed = rows
                empty = [] if self.empty_label is None else [("", self.empty_label)]
                self.widget.choices = [*empty, *rows]
        return reads.listed

    def text_of(self, value: Any) -> str:
        """What the search box shows for ``value``: the school's name for a school or
        the id of one, otherwise the text as it was typed."""
        if value in self.empty_values:
            return ""
        if isinstance(value, self.visible().model):
            return str(value.name)
        try:
            school = self.to_python(value)
        except forms.ValidationError:
            return typed_text(value)
        return "" if school is None else str(school.name)

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        if isinstance(value, self.visible().model):
            value = value.pk
        text = typed_text(value)
        if not text:
            return None
        resolved_before = self._reads().resolved
        if text not in resolved_before:
            try:
                resolved_before[text] = self._resolve(text)
            except forms.ValidationError as error:
                resolved_before[text] = error
        resolved = resolved_before[text]
        if isinstance(resolved, forms.ValidationError):
            raise resolved
        return resolved

    def _resolve(self, text: str) -> Any:
        """The one school ``text`` names: the school with that id, else the one whose
        name is ``text`` (case, accents and spacing aside), else the one whose name
        holds it. A ``ValidationError`` names the schools when several match, with
        their numbers when they share a name: "Lincoln Elementary (17)" is resolved
        too."""
        numbered = NUMBERED.fullmatch(text)
        if numbered:
            school = self._with_id(numbered["id"])
            name = numbered["name"]
            if school is not None and (not name or name_key(name) == name_key(school.name)):
                return school
        key = name_key(text)
        rows = (
            [(pk, name, name_key(name)) for pk, name in self.schools().values_list("pk", "name")]
            if key
            else []
        )
        matches = [row for row in rows if row[2] == key] or [row for row in rows if key in row[2]]
        if len(matches) == 1:
            return self.schools().get(pk=matches[0][0])
        echo = text if len(text) <= ECHO_MAX_LENGTH else f"{text[:ECHO_MAX_LENGTH]}…"
        if not matches:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"text": echo},
            )
        keys = [match_key for _pk, _name, match_key in matches]
        shown = [
            f"{name} ({pk})" if keys.count(match_key) > 1 else name
            for pk, name, match_key in matches[:AMBIGUOUS_NAMES_SHOWN]
        ]
        if len(matches) > AMBIGUOUS_NAMES_SHOWN:
            shown.append("…")
        raise forms.ValidationError(
            self.error_messages["ambiguous"],
            code="ambiguous",
            params={"count": len(matches), "text": echo, "names": ", ".join(shown)},
        )

    def _with_id(self, digits: str) -> Any:
        if len(digits) > ID_MAX_DIGITS:
            return None
        return self.schools().filter(pk=int(digits)).first()

    def has_changed(self, initial: Any, data: Any) -> bool:
        if self.disabled:
            return False
        try:
            chosen = self.to_python(data)
        except forms.ValidationError:
            return True
        initial_pk = initial.pk if isinstance(initial, self.visible().model) else initial
        chosen_pk = None if chosen is None else chosen.pk
        return str(initial_pk or "") != str(chosen_pk or "")
