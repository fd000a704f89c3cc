"""The project's field and error-summary templates: every id once, every error
linked to a control that exists, every help text shown and announced."""

from __future__ import annotations

import re

from django import forms
from django.template.loader import render_to_string


class ChoicesForm(forms.Form):
    language = forms.ChoiceField(
        label="Language", choices=[("en", "English"), ("es", "Spanish")], widget=forms.RadioSelect
    )
    waive = forms.BooleanField(label="Waive it", help_text="Eligible students are waived.")


def _page(form: forms.Form) -> str:
    fields = "".join(render_to_string("includes/field.html", {"field": f}) for f in form)
    return render_to_string("includes/form_errors.html", {"form": form}) + fields


def test_a_radio_field_has_unique_ids_and_its_error_links_to_its_first_choice():
    form = ChoicesForm(data={})
    assert not form.is_valid()
    html = _page(form)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(ids)
    links = re.findall(r'<a href="#([^"]*)"', html)
    assert links == ["id_language_0", "id_waive"]
    assert all(f'id="{target}"' in html for target in links)


def test_a_checkbox_shows_the_help_its_box_is_described_by():
    html = _page(ChoicesForm())
    assert 'aria-describedby="id_waive_helptext"' in html
    assert '<p class="help" id="id_waive_helptext">Eligible students are waived.</p>' in html
