"""The guardian's cart as a form: which fees, and how much to put on lunch accounts.

The form posts only ``<child id>-<fee id>`` keys and the lunch amounts typed in
dollars. It converts and checks them against the household's cart (``payments.cart``)
so that the family sees a message at the field; ``checkout_create`` computes every
amount again and decides.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from payments.cart import CartLine, ChildCart, HouseholdCart
from payments.models import Fee
from payments.money import currency_sign, money

LINES = "line"
LUNCH = "lunch-"
# Dollars as families type them: 25, 25.5, 25.50, $25.50, 1,234.50, 25,50.
_DOLLARS = re.compile(r"\d{1,7}(\.\d{1,2})?")
_DECIMAL_COMMA = re.compile(r"\d{1,7},\d{1,2}")


class MoneyField(forms.CharField):
    """An amount in dollars, as typed, to integer cents (``None`` when left empty)."""

    default_error_messages = {
        "invalid": _("Please enter an amount in dollars, such as 25.00."),
    }

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        attrs.update(inputmode="decimal", autocomplete="off", size="10", maxlength="16")
        return attrs

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        text = str(super().to_python(value) or "")
        # As typed, or as the page writes amounts: 20, $20.00, US$20.00 (Chinese).
        text = text.replace(" ", "").replace("\u00a0", "").upper().removeprefix("US")
        text = text.replace("$", "")
        if not text:
            return None
        if len(text) > 16:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if _DECIMAL_COMMA.fullmatch(text):
            text = text.replace(",", ".")
        elif re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d{1,2})?", text):
            text = text.replace(",", "")
        if not _DOLLARS.fullmatch(text):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        whole, _dot, fraction = text.partition(".")
        return int(whole) * 100 + int((fraction + "00")[:2])

    def validate(self, value: Any) -> None:
        if value is None and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")


class LineChoiceField(forms.MultipleChoiceField):
    """The fixed fees ticked. A key that is no longer open (paid meanwhile, past its
    deadline) gets one message for the family, never the key itself."""

    default_error_messages = {
        "invalid_choice": _(
            "Some of the fees you chose can no longer be paid: they were paid in the "
            "meantime or their deadline passed. Please check your choices."
        ),
    }
    widget = forms.CheckboxSelectMultiple


class CartFields(forms.Form):
    """The cart's fields on a form (the fees page's, or the wizard's fee step):
    ``line`` (the fixed fees ticked) and ``lunch-<child>-<fee>`` (dollars). The
    subclass sets ``cart`` before building the fields with ``cart_build``."""

    cart: HouseholdCart
    problem_target: str = ""  # where the summary links a message that has no field

    @property
    def _posted(self) -> Any:
        """The posted data (a QueryDict: a fee key may come several times)."""
        return self.data

    def cart_build(self) -> None:
        fixed = [line for line in self.cart.lines if not line.is_lunch]
        if fixed:
            self.fields[LINES] = LineChoiceField(
                label=_("Fees to pay"),
                required=False,
                choices=[
                    (line.key, f"{line.fee.family_title} – {line.student.full_name}")
                    for line in fixed
                ],
            )
        for line in self.cart.lines:
            if not line.is_lunch:
                continue
            self.fields[LUNCH + line.key] = lunch = MoneyField(
                label=_("%(fee)s for %(name)s (amount in dollars)")
                % {"fee": line.fee.family_title, "name": line.student.given_name},
                required=False,
                help_text=_("From %(low)s to %(high)s. Leave it empty to add nothing.")
                % {"low": line.min_display, "high": line.due_display},
            )
            # Every fee here is the family's choice: no "(optional)" after the label.
            lunch.conditional = True  # type: ignore[attr-defined]

    # -- what was posted -------------------------------------------------------------

    def unknown_keys(self) -> set[str]:
        """Posted keys that are not open fees of the cart: a fee ticked that is not
        one (or is a lunch account), an amount typed for what is not a lunch account
        (an empty one left on the page does not count)."""
        if not self.is_bound:
            return set()
        unknown = set()
        for key in set(self._posted.getlist(self.add_prefix(LINES))):
            line = self.cart.line(key)
            if line is None or line.is_lunch:
                unknown.add(key)
        lunch = self.add_prefix(LUNCH)
        for name in self.data:
            if not name.startswith(lunch) or not str(self.data.get(name) or "").strip():
                continue
            line = self.cart.line(name.removeprefix(lunch))
            if line is None or not line.is_lunch:
                unknown.add(name.removeprefix(lunch))
        return unknown

    def chosen_keys(self) -> set[str]:
        """The fixed fees ticked: as posted, or as first offered."""
        if self.is_bound:
            return set(self._posted.getlist(self.add_prefix(LINES)))
        return set(self.initial.get(LINES) or [])

    def _lunch_cents(self, key: str) -> int | None:
        name = LUNCH + key
        field = self.fields.get(name)
        if field is None:
            return None
        raw = self.data.get(self.add_prefix(name)) if self.is_bound else self.initial.get(name)
        try:
            value = field.to_python(raw)
        except forms.ValidationError:
            return None
        return value if isinstance(value, int) else None

    @property
    def chosen_total_cents(self) -> int:
        """The total of what is chosen, as far as it can be read (for the page; the
        amount charged is computed again by ``checkout_create``)."""
        total = 0
        chosen = self.chosen_keys()
        for line in self.cart.lines:
            if line.is_lunch:
                cents = self._lunch_cents(line.key) or 0
                total += cents if line.min_cents <= cents <= line.due_cents else 0
            elif line.key in chosen:
                total += line.due_cents
        return total

    @property
    def chosen_total_display(self) -> str:
        return money(self.chosen_total_cents)

    @property
    def currency_sign(self) -> str:
        """For the page's script, which writes the total as the family chooses."""
        return currency_sign()

    # -- cleaning ----------------------------------------------------------------------

    def cart_clean(self, cleaned: dict[str, Any], *, require_choice: bool) -> None:
        """Each lunch amount within its range, at the field; at least one fee chosen."""
        chosen = bool(cleaned.get(LINES))
        for line in self.cart.lines:
            name = LUNCH + line.key
            if not line.is_lunch or name not in cleaned:
                continue
            cents = cleaned.get(name)
            if not cents:
                continue
            if not line.min_cents <= cents <= line.due_cents:
                self.add_error(
                    name,
                    _("Please enter an amount from %(low)s to %(high)s.")
                    % {"low": line.min_display, "high": line.due_display},
                )
            else:
                chosen = True
        if (
            require_choice
            and not chosen
            and not self._has_cart_errors()
            and not self.unknown_keys()
        ):
            self.add_error(None, _("Please choose at least one fee to pay."))

    def _has_cart_errors(self) -> bool:
        errors = getattr(self, "_errors", None) or {}
        return any(name == LINES or name.startswith(LUNCH) for name in errors)

    def checkout_lines(self) -> list[tuple[Any, Any, int | None]]:
        """(child, fee, amount) for ``checkout_create``: lunch with the amount typed,
        every other fee with none (the server computes it). Call on a valid form."""
        cleaned: dict[str, Any] = getattr(self, "cleaned_data", {})
        chosen = set(cleaned.get(LINES) or [])
        lines: list[tuple[Any, Any, int | None]] = []
        for line in self.cart.lines:
            if line.is_lunch:
                cents = cleaned.get(LUNCH + line.key)
                if cents:
                    lines.append((line.student, line.fee, cents))
            elif line.key in chosen:
                lines.append((line.student, line.fee, None))
        return lines

    # -- presenting ------------------------------------------------------------------

    @property
    def line_field(self) -> forms.BoundField | None:
        return self[LINES] if LINES in self.fields else None

    @property
    def line_name(self) -> str:
        return self.add_prefix(LINES)

    def line_input_id(self, key: str) -> str:
        return f"id_{self.add_prefix(LINES)}_{key}"

    @property
    def first_input_id(self) -> str:
        for line in self.cart.lines:
            if line.is_lunch:
                return str(self[LUNCH + line.key].auto_id)
            return self.line_input_id(line.key)
        return ""

    @property
    def pay_button_id(self) -> str:
        return f"{self.prefix}-pay" if self.prefix else "cart-pay"

    def cart_rows(self) -> list[dict[str, Any]]:
        """Per child: the child, each open fee (with its checkbox's id and whether it
        is ticked, or its lunch field), and what is settled."""
        chosen = self.chosen_keys()
        rows = []
        for child in self.cart.children:
            rows.append(
                {
                    "child": child,
                    "lines": [self._row(child, line, chosen) for line in child.lines],
                    "settled": child.settled,
                    "lunch_full": child.lunch_full,
                    "legend_id": f"{self.add_prefix('child')}-{child.student.pk}",
                }
            )
        return rows

    def _row(self, child: ChildCart, line: CartLine, chosen: set[str]) -> dict[str, Any]:
        if line.is_lunch:
            return {"line": line, "field": self[LUNCH + line.key], "facts": _facts(line)}
        return {
            "line": line,
            "id": self.line_input_id(line.key),
            "checked": line.key in chosen,
            "facts": _facts(line),
        }

    def summary(self) -> list[tuple[str, str]]:
        """The error summary: (id of the element to go to, message)."""
        errors = getattr(self, "_errors", None) or {}
        items = []
        target = self.problem_target or self.first_input_id
        for message in errors.get("__all__", []):
            items.append((target, str(message)))
        for name, messages in errors.items():
            if name == "__all__":
                continue
            href = self.first_line_id if name == LINES else str(self[name].auto_id)
            label = self.fields[name].label if name in self.fields else ""
            for message in messages:
                items.append((href, f"{label}: {message}" if label else str(message)))
        return items

    @property
    def first_line_id(self) -> str:
        for line in self.cart.lines:
            if not line.is_lunch:
                return self.line_input_id(line.key)
        return self.first_input_id


def _facts(line: CartLine) -> list[str]:
    """What a family needs to know about a fee, in a few words each."""
    facts = []
    if line.is_required:
        facts.append(str(_("Required")))
    elif line.kind == Fee.Kind.OPTIONAL:
        facts.append(str(_("Optional")))
    if line.fee.event_date:
        facts.append(
            str(_("Trip on %(date)s") % {"date": date_format(line.fee.event_date, "DATE_FORMAT")})
        )
    if line.deadline:
        facts.append(
            str(_("Pay by %(date)s") % {"date": date_format(line.deadline, "DATE_FORMAT")})
        )
    if line.partly_paid:
        facts.append(str(_("%(amount)s already paid") % {"amount": money(line.settled_cents)}))
    return facts


class CartForm(CartFields, forms.Form):
    """The fees page's form: at least one fee, each lunch amount within its range."""

    def __init__(self, *args: Any, cart: HouseholdCart, **kwargs: Any) -> None:
        self.cart = cart
        super().__init__(*args, **kwargs)
        self.cart_build()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.cart_clean(cleaned, require_choice=True)
        return cleaned


def cart_initial(checkout: Any) -> dict[str, Any]:
    """The form's first values from a checkout the family left unpaid: the same
    choices again, so that paying them reuses the same Stripe page."""
    if checkout is None:
        return {}
    initial: dict[str, Any] = {LINES: []}
    for line in checkout.lines.all():
        key = f"{line.student_id}-{line.fee_id}"
        initial[LINES].append(key)
        initial[LUNCH + key] = f"{line.amount_cents // 100}.{line.amount_cents % 100:02d}"
    return initial
