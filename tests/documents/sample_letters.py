"""A made-up activation letter, for tests that render letters without a district."""

from __future__ import annotations

import datetime

from documents.letters import Letter


def sample_letter(name: str, language: str) -> Letter:
    """A guardian's letter to ``name`` in ``language``, with a fixed code and expiry."""
    return Letter(
        kind="guardian",
        sourced_id=f"par-{name}",
        name=name,
        street1="1 Main St",
        street2="",
        city="Riverside",
        state="CA",
        postal_code="95201",
        language=language,
        code="ABCD-EFGH-JKMN-PQRS",
        expires_on=datetime.date(2027, 2, 26),
        children=["Sofía"],
        household="hh-001",
    )
