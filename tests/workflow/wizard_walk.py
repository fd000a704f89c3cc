"""Walk the re-registration wizard through HTTP as a browser would: read the step's
form from the page, change what the family would type, and post it back.

    wizard = WizardWalk(client, registration)
    page = wizard.open()                       # GET /register/<pk>/, redirects followed
    page = wizard.submit(page, {"g1_email": "maria@example.com"})
    page = wizard.submit(page, unchanged=True)  # "This is all still correct"

Field names are given without the step's prefix (``g1_email`` for ``contacts-g1_email``);
``None`` removes a field from the post (an unticked box, an emptied choice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from django.urls import reverse


@dataclass
class ParsedForm:
    attrs: dict[str, str]
    fields: dict[str, list[str]] = field(default_factory=dict)  # what a browser would send
    choices: dict[str, list[str]] = field(default_factory=dict)  # every value offered
    files: list[str] = field(default_factory=list)
    buttons: dict[str, str] = field(default_factory=dict)


class PageParser(HTMLParser):
    """The forms of a page with their fields, the error paragraphs by id, the widgets
    marked aria-invalid, and the messages."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[ParsedForm] = []
        self.errors: dict[str, str] = {}
        self.invalid: set[str] = set()
        self.messages: list[str] = []
        self._form: ParsedForm | None = None
        self._select: tuple[str, bool] | None = None  # name, an option was selected
        self._first_option: str | None = None
        self._option: dict[str, str] | None = None
        self._textarea: str | None = None
        self._text: list[str] = []
        self._capture: tuple[str, str] | None = None  # ("error", id) or ("message", "")

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        if attrs.get("aria-invalid") == "true":
            self.invalid.add(attrs.get("id") or attrs.get("name", ""))
        classes = attrs.get("class", "").split()
        if tag == "p" and "error" in classes and attrs.get("id"):
            self._capture, self._text = ("error", attrs["id"]), []
        elif tag == "p" and "message" in classes:
            self._capture, self._text = ("message", ""), []
        if tag == "form":
            self._form = ParsedForm(attrs=attrs)
            self.forms.append(self._form)
            return
        form = self._form
        if form is None:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind == "file":
                form.files.append(name)
            elif kind in ("checkbox", "radio"):
                value = attrs.get("value", "on")
                form.choices.setdefault(name, []).append(value)
                form.fields.setdefault(name, [])
                if "checked" in attrs:
                    form.fields[name].append(value)
            elif kind not in ("submit", "button", "reset", "image"):
                form.fields.setdefault(name, []).append(attrs.get("value", ""))
        elif tag == "button" and name:
            form.buttons[name] = attrs.get("value", "")
        elif tag == "select" and name:
            self._select, self._first_option = (name, False), None
            form.fields.setdefault(name, [])
            form.choices.setdefault(name, [])
        elif tag == "option" and self._select is not None:
            self._option, self._text = attrs, []
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._capture or self._option is not None or self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        form = self._form
        if tag == "p" and self._capture:
            kind, key = self._capture
            text = " ".join("".join(self._text).split())
            if kind == "error":
                self.errors[key] = text
            else:
                self.messages.append(text)
            self._capture = None
        elif tag == "option" and self._option is not None and self._select and form:
            name, chosen = self._select
            value = self._option.get("value", "".join(self._text).strip())
            form.choices[name].append(value)
            if self._first_option is None:
                self._first_option = value
            if "selected" in self._option:
                form.fields[name].append(value)
                self._select = (name, True)
            self._option = None
        elif tag == "select" and self._select and form:
            name, chosen = self._select
            if not chosen and self._first_option is not None:
                form.fields[name] = [self._first_option]  # what a browser sends
            self._select = None
        elif tag == "textarea" and self._textarea and form:
            text = "".join(self._text)
            form.fields[self._textarea] = [text[1:] if text.startswith("\n") else text]
            self._textarea = None
        elif tag == "form":
            self._form = None


class Page:
    """One page of the wizard (or wherever the last redirect led)."""

    def __init__(self, response: Any, prefix: str) -> None:
        self.response = response
        self.status_code: int = response.status_code
        self.html: str = response.content.decode()
        chain = getattr(response, "redirect_chain", [])
        self.url: str = chain[-1][0] if chain else response.wsgi_request.path
        self.redirect_chain: list[tuple[str, int]] = chain
        parser = PageParser()
        parser.feed(self.html)
        self.errors, self.invalid, self.messages = parser.errors, parser.invalid, parser.messages
        self.unchanged_form: ParsedForm | None = None
        self.form: ParsedForm | None = None
        for form in parser.forms:
            if "unchanged" in form.buttons:
                self.unchanged_form = form
            elif form.attrs.get("enctype") == "multipart/form-data":
                self.form = form
        self.management_name = f"{prefix}-current_step"
        self.step: str = ""
        if self.form is not None and self.management_name in self.form.fields:
            self.step = self.form.fields[self.management_name][0]

    def name(self, field_name: str) -> str:
        return f"{self.step}-{field_name}"

    @property
    def fields(self) -> dict[str, list[str]]:
        assert self.form is not None, f"no wizard form on {self.url}"
        return self.form.fields

    def value(self, field_name: str) -> str:
        """The value a browser would send for ``field_name`` (no step prefix)."""
        values = self.fields.get(self.name(field_name), [])
        return values[0] if values else ""

    def values(self, field_name: str) -> list[str]:
        return self.fields.get(self.name(field_name), [])

    def checked(self, field_name: str) -> bool:
        return bool(self.fields.get(self.name(field_name)))

    def choices(self, field_name: str) -> list[str]:
        assert self.form is not None
        return self.form.choices.get(self.name(field_name), [])

    def error(self, field_name: str) -> str:
        """The message shown at the field (``<p class="error" id="id_<name>_error">``)."""
        return self.errors.get(f"id_{self.name(field_name)}_error", "")

    def is_invalid(self, field_name: str) -> bool:
        """The widget is marked aria-invalid (any of a radio group's inputs)."""
        html_id = f"id_{self.name(field_name)}"
        return any(i == html_id or i.startswith(html_id + "_") for i in self.invalid)

    @property
    def offers_unchanged(self) -> bool:
        return self.unchanged_form is not None


class WizardWalk:
    """A guardian going through one registration's wizard with a test client."""

    def __init__(self, client: Any, registration: Any) -> None:
        self.client = client
        self.pk: int = registration.pk if hasattr(registration, "pk") else int(registration)
        self.prefix = f"registration_{self.pk}"

    def url(self, step: str | None = None) -> str:
        if step is None:
            return reverse("registration_resume", kwargs={"pk": self.pk})
        return reverse("registration_step", kwargs={"pk": self.pk, "step": step})

    def open(self, step: str | None = None) -> Page:
        """GET the wizard (or one step), following redirects."""
        response = self.client.get(self.url(step), follow=True)
        return Page(response, self.prefix)

    def data(
        self,
        page: Page,
        changes: dict[str, Any] | None = None,
        *,
        unchanged: bool = False,
        step: str | None = None,
    ) -> dict[str, Any]:
        """What the browser would post from ``page``, with ``changes`` typed in."""
        if unchanged:
            assert page.unchanged_form is not None, f"no “all still correct” on {page.url}"
            data: dict[str, Any] = {k: list(v) for k, v in page.unchanged_form.fields.items()}
            data["unchanged"] = "1"
        else:
            data = {k: list(v) for k, v in page.fields.items() if v}
        data.pop("csrfmiddlewaretoken", None)
        for name, value in (changes or {}).items():
            key = page.name(name)
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        if step is not None:
            data[page.management_name] = step
        return data

    def submit(
        self,
        page: Page,
        changes: dict[str, Any] | None = None,
        *,
        unchanged: bool = False,
        follow: bool = True,
        button: tuple[str, str] | None = None,
    ) -> Page:
        """Post the page's step form with ``changes``; files go in ``changes`` too.
        ``button``: the (name, value) of the submit button pressed, when it matters
        (``("action", "pay")`` on the fee step)."""
        data = self.data(page, changes, unchanged=unchanged)
        if button is not None:
            data[page.name(button[0])] = button[1]
        response = self.client.post(self.url(page.step), data, follow=follow)
        return Page(response, self.prefix)
