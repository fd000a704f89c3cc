"""Lists of names the way people write them: "Sofía, Mateo and Lucía"."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext

register = template.Library()


@register.filter
def names_list(names: list[str]) -> str:
    names = [str(name) for name in names]
    if len(names) < 2:
        return "".join(names)
    return gettext("%(names)s and %(last)s") % {"names": ", ".join(names[:-1]), "last": names[-1]}
