"""The long-list widgets write what Django's own select would, escaped."""

from __future__ import annotations

from django import forms

from config.widgets import LongSelect, LongSelectMultiple


class _Form(forms.Form):
    school = forms.ChoiceField(
        choices=[("", "—"), ("1", "Lincoln & <Sons>"), ("2", 'Say "hi"')], widget=LongSelect
    )
    schools = forms.MultipleChoiceField(
        choices=[("1", "One"), ("2", "Two"), ("3", "Three")], widget=LongSelectMultiple
    )


def test_options_are_escaped_and_the_choice_selected():
    form = _Form(data={"school": "1", "schools": ["1", "3"]})
    html = str(form["school"])
    assert '<select id="id_school" name="school" required>' in html
    assert '<option value="1" selected>Lincoln &amp; &lt;Sons&gt;</option>' in html
    assert '<option value="2">Say &quot;hi&quot;</option>' in html
    assert "<Sons>" not in html
    many = str(form["schools"])
    assert "multiple" in many
    assert many.count(" selected") == 2 and '<option value="2">Two</option>' in many


def test_a_bad_choice_is_refused_as_with_a_plain_select():
    form = _Form(data={"school": "9", "schools": ["1"]})
    assert not form.is_valid()
    assert "school" in form.errors
