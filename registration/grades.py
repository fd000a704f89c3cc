"""Grade levels as OneRoster 1.1 names them (the CEDS grade-level codes).

The order of ``GRADE_CODES`` is the order of promotion: a returning student moves
to the next code.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

GRADE_LABELS = {
    "IT": _("Infant/toddler"),
    "PR": _("Preschool"),
    "PK": _("Pre-kindergarten"),
    "TK": _("Transitional kindergarten"),
    "KG": _("Kindergarten"),
    "01": _("Grade 1"),
    "02": _("Grade 2"),
    "03": _("Grade 3"),
    "04": _("Grade 4"),
    "05": _("Grade 5"),
    "06": _("Grade 6"),
    "07": _("Grade 7"),
    "08": _("Grade 8"),
    "09": _("Grade 9"),
    "10": _("Grade 10"),
    "11": _("Grade 11"),
    "12": _("Grade 12"),
    "13": _("Grade 13"),
    "PS": _("Postsecondary"),
    "UG": _("Ungraded"),
    "Other": _("Other"),
}
GRADE_CODES = tuple(GRADE_LABELS)
GRADE_CHOICES = list(GRADE_LABELS.items())
# Grades that follow each other in school; the rest have no "next grade".
PROMOTION_ORDER = (
    "PK",
    "TK",
    "KG",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "07",
    "08",
    "09",
    "10",
    "11",
    "12",
)


def grade_rank(code: str) -> int:
    """Position of a grade in promotion order; grades outside it sort last."""
    try:
        return PROMOTION_ORDER.index(code)
    except ValueError:
        return len(PROMOTION_ORDER)


def grade_next(code: str) -> str | None:
    """The grade a returning student moves to, or None after grade 12 or when ungraded."""
    if code not in PROMOTION_ORDER or code == PROMOTION_ORDER[-1]:
        return None
    return PROMOTION_ORDER[PROMOTION_ORDER.index(code) + 1]


def grade_in_range(code: str, low: str, high: str) -> bool:
    """Whether a school whose grades run from ``low`` to ``high`` teaches ``code``."""
    rank = grade_rank(code)
    return rank < len(PROMOTION_ORDER) and grade_rank(low) <= rank <= grade_rank(high)
