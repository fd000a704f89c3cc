"""What the roster import or the families left broken, for the registrar's data
quality page.

Every list is computed in the database: a count and at most ``LIST_LIMIT`` rows,
two queries per list however large the district is. Records the roster marks as
not enabled (people who left) are left out of every list.

Comparing every name of a district for duplicates still reads all of it: a few
seconds for a million students. So the page reads the lists as last counted, the
``quality`` summary of ``workflow.summaries`` (``quality_current``).
"""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.models import (
    CharField,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Cast

from registration.models import (
    ContactPoint,
    ContactPreference,
    Guardian,
    Household,
    Student,
    StudentGuardian,
)

LIST_LIMIT = 50

T = TypeVar("T")


def _folding_table() -> tuple[str, str]:
    """Accented Latin letters (both cases) and the plain lower-case letter each
    folds to, e.g. "Á" and "á" to "a", "ł" to "l"."""
    accented, plain = [], []
    for code in (*range(0x00C0, 0x0180), *range(0x1E00, 0x1F00)):
        letter = chr(code)
        base = unicodedata.normalize("NFKD", letter)[0].lower()
        if base != letter.lower() and base.isascii() and base.isalpha():
            accented.append(letter)
            plain.append(base)
    for letter, base in (("ø", "o"), ("Ø", "o"), ("ł", "l"), ("Ł", "l"), ("đ", "d"), ("Đ", "d")):
        accented.append(letter)
        plain.append(base)
    return "".join(accented), "".join(plain)


_ACCENTED, _PLAIN = _folding_table()
# Left out of the comparison: separators, and the combining marks of names stored
# decomposed ("e" followed by U+0301).
_DROPPED = " -'’.,\t" + "".join(chr(code) for code in range(0x0300, 0x0370))
_FOLD = str.maketrans(_ACCENTED, _PLAIN, _DROPPED)


def name_key_text(value: str | None) -> str | None:
    """A name as compared for duplicates: lower case, accents removed, and spaces,
    hyphens, apostrophes and dots dropped ("Núñez-Peña" → "nunezpena")."""
    if value is None:
        return None
    return value.strip().lower().translate(_FOLD)


@dataclass
class QualityList(Generic[T]):
    """The first rows of one list and how many there are in all."""

    total: int
    rows: list[T]

    @property
    def capped(self) -> bool:
        return self.total > len(self.rows)


def _capped(queryset: QuerySet[Any], total: int | None = None) -> QualityList[Any]:
    total = queryset.count() if total is None else total
    rows = list(queryset[:LIST_LIMIT]) if total else []
    return QualityList(total=total, rows=rows)


def households_unreachable() -> QualityList[Household]:
    """Households with no home phone whose guardians have no phone number and no
    email address that has not bounced."""
    reachable = ContactPoint.objects.filter(
        guardian__householdguardian__household=OuterRef("pk"), guardian__enabled=True
    ).filter(Q(kind=ContactPoint.Kind.PHONE) | Q(kind=ContactPoint.Kind.EMAIL, bounced_at=None))
    return _capped(
        Household.objects.filter(phone="").filter(~Exists(reachable)).order_by("sourced_id", "pk")
    )


def students_without_guardian() -> QualityList[Student]:
    """Enabled students with no guardian linked to them."""
    return _capped(
        Student.objects.filter(enabled=True)
        .filter(~Exists(StudentGuardian.objects.filter(student=OuterRef("pk"))))
        .select_related("school")
        .order_by("family_name", "given_name", "pk")
    )


def _with_latest_bounce(guardians: QuerySet[Guardian]) -> QuerySet[Guardian]:
    latest = ContactPoint.objects.filter(
        guardian=OuterRef("pk"), kind=ContactPoint.Kind.EMAIL, bounced_at__isnull=False
    ).order_by("-bounced_at", "-pk")
    return guardians.filter(Exists(latest)).annotate(
        bounced_email=Subquery(latest.values("email")[:1]),
        bounced_at=Subquery(latest.values("bounced_at")[:1]),
    )


def guardians_bounced() -> QualityList[Guardian]:
    """Guardians with at least one email address that bounced; each row carries
    ``bounced_email`` and ``bounced_at``, the latest bounce."""
    return _capped(
        _with_latest_bounce(Guardian.objects.filter(enabled=True)).order_by(
            "-bounced_at", "family_name", "given_name", "pk"
        )
    )


OPTED_OUT_OF_EVERYTHING = Q(
    non_emergency_opt_out=True,
    attendance_voice=False,
    attendance_sms=False,
    attendance_email=False,
    general_voice=False,
    general_sms=False,
    general_email=False,
)
"""The non-emergency opt-out is on and every attendance and general channel is off:
the guardian hears from the district only in an emergency."""


def guardians_opted_out() -> QualityList[Guardian]:
    """Guardians who opted out of everything but emergencies (``OPTED_OUT_OF_EVERYTHING``)."""
    return _capped(
        Guardian.objects.filter(enabled=True)
        .filter(
            Exists(
                ContactPreference.objects.filter(guardian=OuterRef("pk")).filter(
                    OPTED_OUT_OF_EVERYTHING
                )
            )
        )
        .order_by("family_name", "given_name", "pk")
    )


@dataclass
class DuplicateGuardian:
    """One guardian who shares a name and an email or phone with another; rows of
    one group (the same ``key``) are adjacent."""

    key: str
    guardian_id: int
    full_name: str
    sourced_id: str
    shared: str


def _name_key(family_name: str, given_name: str) -> str:
    return f"{name_key_text(family_name)}|{name_key_text(given_name)}"


def _duplicate_groups(pairs: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    """From (key, id) pairs, the keys shared by two ids or more, with their ids.

    Duplicates are found in Python over one pass of the rows: keying a million
    names in SQL (TRANSLATE over hundreds of accented letters) and grouping
    them took PostgreSQL minutes; ``str.translate`` takes a second or two."""
    first: dict[str, int] = {}
    shared: dict[str, list[int]] = {}
    for key, pk in pairs:
        seen = first.setdefault(key, pk)
        if seen != pk:
            ids = shared.setdefault(key, [seen])
            if pk not in ids:
                ids.append(pk)
    return shared


def _first_groups(groups: dict[str, list[int]]) -> list[str]:
    """The keys of the first groups, in key order, that fill a list of ``LIST_LIMIT``."""
    first: list[str] = []
    rows = 0
    for key in sorted(groups):
        if rows >= LIST_LIMIT:
            break
        first.append(key)
        rows += len(groups[key])
    return first


def guardians_duplicated() -> QualityList[DuplicateGuardian]:
    """Enabled guardians with the same name (``name_key_text``) and the same email
    address (in lower case) or phone number (as stored, E.164) as another enabled
    guardian."""
    points = (
        ContactPoint.objects.filter(guardian__enabled=True)
        # The phone as text: parsing two million numbers back into objects costs more
        # than the whole comparison.
        .annotate(phone_text=Cast("phone", CharField()))
        .values_list(
            "guardian_id",
            "guardian__family_name",
            "guardian__given_name",
            "kind",
            "email",
            "phone_text",
        )
        .order_by()
    )

    def keyed() -> Iterator[tuple[str, int]]:
        for guardian_id, family, given, kind, email, phone in points.iterator(chunk_size=20_000):
            contact = email.strip().lower() if kind == ContactPoint.Kind.EMAIL else phone or ""
            yield f"{_name_key(family, given)}|{contact}", guardian_id

    groups = _duplicate_groups(keyed())
    total = len({pk for ids in groups.values() for pk in ids})
    first = _first_groups(groups)
    people = Guardian.objects.in_bulk([pk for key in first for pk in groups[key]])
    rows = [
        DuplicateGuardian(
            key=key,
            guardian_id=pk,
            full_name=f"{people[pk].given_name} {people[pk].family_name}",
            sourced_id=people[pk].sourced_id,
            shared=key.split("|", 2)[2],
        )
        for key in first
        for pk in sorted(groups[key])
        if pk in people
    ]
    return QualityList(total=total, rows=rows[:LIST_LIMIT])


def students_duplicated() -> QualityList[Student]:
    """Enabled students with the same name (``name_key_text``) and birth date as
    another enabled student; each row carries ``duplicate_key``, rows of a group
    adjacent."""
    students = (
        Student.objects.filter(enabled=True, birth_date__isnull=False)
        .values_list("pk", "family_name", "given_name", "birth_date")
        .order_by()
    )
    groups = _duplicate_groups(
        (f"{_name_key(family, given)}|{born}", pk)
        for pk, family, given, born in students.iterator(chunk_size=20_000)
    )
    total = sum(len(ids) for ids in groups.values())
    first = _first_groups(groups)
    found = Student.objects.select_related("school").in_bulk(
        [pk for key in first for pk in groups[key]]
    )
    rows = []
    for key in first:
        for pk in sorted(groups[key]):
            if pk in found:
                found[pk].duplicate_key = key  # type: ignore[attr-defined]
                rows.append(found[pk])
    return QualityList(total=total, rows=rows[:LIST_LIMIT])


@dataclass
class DataQuality:
    households_unreachable: QualityList[Household]
    students_without_guardian: QualityList[Student]
    guardians_bounced: QualityList[Guardian]
    guardians_opted_out: QualityList[Guardian]
    guardians_duplicated: QualityList[DuplicateGuardian]
    students_duplicated: QualityList[Student]


def data_quality() -> DataQuality:
    """Every list of the data quality page: at most two queries each."""
    return DataQuality(
        households_unreachable=households_unreachable(),
        students_without_guardian=students_without_guardian(),
        guardians_bounced=guardians_bounced(),
        guardians_opted_out=guardians_opted_out(),
        guardians_duplicated=guardians_duplicated(),
        students_duplicated=students_duplicated(),
    )


# -- the last count, read by the page ---------------------------------------------------


def quality_count() -> dict[str, Any]:
    """Every list now, as the ``quality`` summary keeps it: each list's count and the
    ids of its first rows (the rows themselves for guardians who look duplicated)."""
    quality = data_quality()

    def ids(listed: QualityList[Any]) -> dict[str, Any]:
        return {"total": listed.total, "ids": [row.pk for row in listed.rows]}

    return {
        "households_unreachable": ids(quality.households_unreachable),
        "students_without_guardian": ids(quality.students_without_guardian),
        "guardians_bounced": ids(quality.guardians_bounced),
        "guardians_opted_out": ids(quality.guardians_opted_out),
        "guardians_duplicated": {
            "total": quality.guardians_duplicated.total,
            # The names are read again when shown, like every other list's rows.
            "rows": [
                {"key": row.key, "guardian_id": row.guardian_id, "shared": row.shared}
                for row in quality.guardians_duplicated.rows
            ],
        },
        "students_duplicated": {
            **ids(quality.students_duplicated),
            "keys": [row.duplicate_key for row in quality.students_duplicated.rows],  # type: ignore[attr-defined]
        },
    }


def _in_order(queryset: QuerySet[Any], stored: dict[str, Any]) -> QualityList[Any]:
    """The rows a count listed, in its order, as they are now (one query); a row
    removed since is left out."""
    listed = stored["ids"][:LIST_LIMIT]  # a count made with a higher limit lists more
    by_id = queryset.in_bulk(listed)
    return QualityList(total=stored["total"], rows=[by_id[pk] for pk in listed if pk in by_id])


def _duplicates_now(stored: dict[str, Any]) -> QualityList[DuplicateGuardian]:
    """The guardians a count found duplicated, with their names as they are now (one
    query); a guardian removed since is left out."""
    listed = stored["rows"][:LIST_LIMIT]
    people = Guardian.objects.in_bulk([row["guardian_id"] for row in listed])
    return QualityList(
        total=stored["total"],
        rows=[
            DuplicateGuardian(
                key=row["key"],
                guardian_id=row["guardian_id"],
                full_name=f"{people[row['guardian_id']].given_name} "
                f"{people[row['guardian_id']].family_name}",
                sourced_id=people[row["guardian_id"]].sourced_id,
                shared=row["shared"],
            )
            for row in listed
            if row["guardian_id"] in people
        ],
    )


def quality_from_count(lists: dict[str, Any]) -> DataQuality:
    """The lists as ``quality_count`` found them: one query per list."""
    duplicated = _in_order(Student.objects.select_related("school"), lists["students_duplicated"])
    keys = dict(
        zip(lists["students_duplicated"]["ids"], lists["students_duplicated"]["keys"], strict=True)
    )
    for student in duplicated.rows:
        student.duplicate_key = keys[student.pk]
    return DataQuality(
        households_unreachable=_in_order(Household.objects.all(), lists["households_unreachable"]),
        students_without_guardian=_in_order(
            Student.objects.select_related("school"), lists["students_without_guardian"]
        ),
        guardians_bounced=_in_order(
            _with_latest_bounce(Guardian.objects.all()), lists["guardians_bounced"]
        ),
        guardians_opted_out=_in_order(Guardian.objects.all(), lists["guardians_opted_out"]),
        guardians_duplicated=_duplicates_now(lists["guardians_duplicated"]),
        students_duplicated=duplicated,
    )


def quality_current() -> tuple[DataQuality, datetime.datetime]:
    """The lists as last counted (``workflow.summaries``), and when."""
    from workflow.summaries import summary_current

    summary = summary_current("quality")
    return quality_from_count(summary.data), summary.taken_at
