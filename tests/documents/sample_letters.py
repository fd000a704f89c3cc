"""A made-up activation letter, for tests that render letters without a district."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from documents.letters import Letter


def sample_letter(name: str, language: str, **changes: Any) -> Letter:
    """A guardian's letter to ``name`` in ``language``, with a fixed code and expiry;
    ``changes`` replace any other of its fields."""
    letter = Letter(
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
    return dataclasses.replace(letter, **changes)
