"""A made-up district, written as a roster bundle, deterministic for a seed.

The demo district and the benchmarks are built from it, so that both go through the
real importer. Families are realistic in the ways that matter to the product:
siblings, children living in two households, a grandparent who is a guardian in two
households, guardians without email, Spanish-speaking households, names with accents
and apostrophes, phone numbers written every which way. Every phone number is in
the fictional 555 exchange and every email address is at example.com.
"""

from __future__ import annotations

import csv
import datetime
import random
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from registration.grades import PROMOTION_ORDER
from registration.roster import format as fmt

ENGLISH_GIVEN_F = (
    "Olivia",
    "Emma",
    "Ava",
    "Sophia",
    "Isabella",
    "Mia",
    "Amelia",
    "Harper",
    "Evelyn",
    "Abigail",
    "Emily",
    "Ella",
    "Elizabeth",
    "Sofia",
    "Avery",
    "Scarlett",
    "Grace",
    "Chloe",
    "Zoey",
    "Lily",
    "Hannah",
    "Nora",
    "Aaliyah",
    "Priya",
    "Mei",
    "Aisha",
    "Zoë",
    "Chloé",
    "Siobhan",
    "Anh",
    "Fatima",
    "Hana",
    "Ngozi",
    "Ingrid",
    "Leah",
    "Naomi",
    "Ruth",
    "Maya",
)
ENGLISH_GIVEN_M = (
    "Liam",
    "Noah",
    "Oliver",
    "Elijah",
    "James",
    "William",
    "Benjamin",
    "Lucas",
    "Henry",
    "Alexander",
    "Mason",
    "Michael",
    "Ethan",
    "Daniel",
    "Jacob",
    "Logan",
    "Jackson",
    "Levi",
    "Sebastian",
    "Mateo",
    "Jack",
    "Owen",
    "Theodore",
    "Aiden",
    "Samuel",
    "Rohan",
    "Wei",
    "Kwame",
    "Darius",
    "Seán",
    "Tomás",
    "Minh",
    "Omar",
    "Kenji",
    "Arjun",
    "Malik",
    "Eli",
)
ENGLISH_FAMILY = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Nguyen",
    "Chen",
    "Patel",
    "Kim",
    "O'Brien",
    "O'Connor",
    "D'Souza",
    "McAllister",
    "Van der Berg",
    "Okafor",
    "Haddad",
    "Novak",
    "Kowalski",
    "Nakamura",
    "Singh",
    "Cohen",
    "Bjørnstad",
    "St. John",
    "Fitzgerald-Hughes",
    "Abernathy",
    "MacDonald",
    "Dubois",
    "Le",
    "Tran",
)
SPANISH_GIVEN_F = (
    "María",
    "Sofía",
    "Valentina",
    "Camila",
    "Lucía",
    "Ximena",
    "Guadalupe",
    "Daniela",
    "Mariana",
    "Renata",
    "Fernanda",
    "Paola",
    "Ana",
    "Adriana",
    "Verónica",
    "Isabel",
    "Natalia",
    "Gabriela",
    "Andrea",
    "Carmen",
    "Rocío",
    "Itzel",
    "Dulce",
    "Araceli",
)
SPANISH_GIVEN_M = (
    "José",
    "Juan",
    "Luis",
    "Carlos",
    "Jesús",
    "Miguel",
    "Alejandro",
    "Diego",
    "Santiago",
    "Mateo",
    "Sebastián",
    "Andrés",
    "Ángel",
    "Emiliano",
    "Joaquín",
    "Rafael",
    "Óscar",
    "Héctor",
    "Iván",
    "Rubén",
    "Ramón",
    "Julián",
    "Tomás",
    "Adrián",
)
SPANISH_FAMILY = (
    "García",
    "Rodríguez",
    "Martínez",
    "Hernández",
    "López",
    "González",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Torres",
    "Flores",
    "Rivera",
    "Gómez",
    "Díaz",
    "Cruz",
    "Morales",
    "Reyes",
    "Gutiérrez",
    "Ortiz",
    "Ruiz",
    "Chávez",
    "Núñez",
    "Peña",
    "Jiménez",
    "Ibáñez",
    "Muñoz",
    "Castañeda",
    "De la Cruz",
    "Vázquez",
    "Domínguez",
)
STREETS = (
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Willow",
    "Birch",
    "Magnolia",
    "Sycamore",
    "Alameda",
    "Camino Real",
    "Bryant",
    "Waverley",
    "Cowper",
    "Middlefield",
    "Loma Verde",
    "El Dorado",
    "Colorado",
    "Louis",
    "Greer",
    "Arastradero",
    "Los Robles",
    "Sierra",
    "Mesa",
    "Vista",
    "Ridge",
    "Lakeview",
    "Hillcrest",
    "Sunset",
    "Orchard",
)
STREET_TYPES = ("St", "Ave", "Rd", "Dr", "Ct", "Way", "Ln", "Blvd")
CITY, STATE = "Riverside", "CA"
ZIP_CODES = ("95201", "95202", "95203", "95204", "95205", "95206", "95207")
AREA_CODES = ("650", "408", "415", "510", "669")
CONTACT_RELATIONSHIPS = (
    "Aunt",
    "Uncle",
    "Neighbor",
    "Family friend",
    "Grandmother",
    "Grandfather",
    "Cousin",
    "Tía",
    "Tío",
    "Abuela",
    "Godmother",
)
ELEMENTARY_NAMES = (
    "Las Lomas",
    "Cedar Grove",
    "Juniper Hills",
    "Willow Creek",
    "Sunnyside",
    "Bayview",
    "Oak Knoll",
    "Mission Park",
    "Rancho Alto",
    "Fair Oaks",
    "Hillview",
    "Laurel",
)
MIDDLE_NAMES = ("Riverside", "Sequoia", "Vista Verde", "Arroyo", "Canyon View", "Meadowlark")
HIGH_NAMES = ("Mission Ridge", "Riverside", "Valley Oak", "Sierra Vista")
SECONDARY_SUBJECTS = (
    ("English", "ENG"),
    ("Mathematics", "MATH"),
    ("Science", "SCI"),
    ("Social Studies", "SOC"),
    ("Physical Education", "PE"),
    ("Art", "ART"),
)
ELEMENTARY_GRADES = ("KG", "01", "02", "03", "04", "05")
MIDDLE_GRADES = ("06", "07", "08")
HIGH_GRADES = ("09", "10", "11", "12")


def current_school_year(today: datetime.date) -> int:
    """The calendar year in which the school year running on ``today`` ends."""
    return today.year + 1 if today.month >= 7 else today.year


@dataclass
class _School:
    sid: str
    name: str
    grades: tuple[str, ...]
    low: str
    high: str
    street: str
    postal_code: str


@dataclass
class _Bundle:
    """Rows of every file, by file name."""

    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def add(self, name: str, row: dict[str, str]) -> None:
        self.rows.setdefault(name, []).append(row)


class _Generator:
    def __init__(self, households: int, seed: int, school_year: int, district_name: str) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - made-up data, repeatable by design
        self.households = households
        self.year = school_year
        self.district_name = district_name
        self.bundle = _Bundle()
        self.counter: dict[str, int] = {}
        self.state_ids: set[str] = set()
        self.guardian_rows: dict[str, dict[str, str]] = {}
        self.teaching_load: dict[tuple[str, str], tuple[str, int]] = {}
        self.grandparents: list[str] = []

    def next_id(self, prefix: str, width: int = 6) -> str:
        self.counter[prefix] = self.counter.get(prefix, 0) + 1
        return f"{prefix}-{self.counter[prefix]:0{width}d}"

    # -- people -------------------------------------------------------------------

    def phone(self) -> str:
        area = self.rng.choice(AREA_CODES)
        line = self.rng.randrange(1000, 10000)
        style = self.rng.randrange(6)
        return (
            f"({area}) 555-{line}",
            f"{area}-555-{line}",
            f"{area}.555.{line}",
            f"{area}555{line}",
            f"+1 {area} 555 {line}",
            f"1-{area}-555-{line}",
        )[style]

    def email(self, given: str, family: str) -> str:
        local = f"{given}.{family}".lower().replace(" ", "").replace("'", "")
        local = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
        return f"{local}{self.rng.randrange(10, 1000)}@example.com"

    def address(self) -> dict[str, str]:
        street = (
            f"{self.rng.randrange(10, 4000)} {self.rng.choice(STREETS)} "
            f"{self.rng.choice(STREET_TYPES)}"
        )
        unit = f"Apt {self.rng.randrange(1, 40)}" if self.rng.random() < 0.18 else ""
        return {
            "street1": street,
            "street2": unit,
            "city": CITY,
            "state": STATE,
            "postalCode": self.rng.choice(ZIP_CODES),
        }

    def birth_date(self, grade: str) -> datetime.date:
        offset = PROMOTION_ORDER.index(grade) - PROMOTION_ORDER.index("KG")
        start = datetime.date(self.year - 7 - offset, 9, 2)
        return start + datetime.timedelta(days=self.rng.randrange(365))

    def state_id(self) -> str:
        while True:
            candidate = str(self.rng.randrange(10**9, 10**10))
            if candidate not in self.state_ids:
                self.state_ids.add(candidate)
                return candidate

    # -- district -----------------------------------------------------------------

    def generate(self) -> _Bundle:
        students_expected = int(self.households * 1.76)
        elementary = max(2, round(students_expected * 6 / 13 / 450))
        middle = max(1, round(students_expected * 3 / 13 / 700))
        high = max(1, round(students_expected * 4 / 13 / 1500))
        self.add_org_and_sessions()
        self.schools = {
            "elementary": [
                self.add_school("elem", ELEMENTARY_NAMES, "Elementary", i, ELEMENTARY_GRADES)
                for i in range(elementary)
            ],
            "middle": [
                self.add_school("mid", MIDDLE_NAMES, "Middle School", i, MIDDLE_GRADES)
                for i in range(middle)
            ],
            "high": [
                self.add_school("high", HIGH_NAMES, "High School", i, HIGH_GRADES)
                for i in range(high)
            ],
        }
        self.students_by_school: dict[str, list[tuple[str, str]]] = {}
        for index in range(self.households):
            self.add_family(index)
        self.add_classes()
        return self.bundle

    def add_org_and_sessions(self) -> None:
        self.district_sid = "district-1"
        self.bundle.add(
            fmt.ORGS.name,
            {
                "sourcedId": self.district_sid,
                "name": self.district_name,
                "type": "district",
                "identifier": "RUSD",
            },
        )
        self.sessions: dict[int, dict[str, str]] = {}
        for year in (self.year, self.year + 1):
            sid = f"sy-{year}"
            self.bundle.add(
                fmt.ACADEMIC_SESSIONS.name,
                {
                    "sourcedId": sid,
                    "title": f"{year - 1}–{str(year)[-2:]} School Year",
                    "type": "schoolYear",
                    "startDate": f"{year - 1}-08-15",
                    "endDate": f"{year}-06-12",
                    "schoolYear": str(year),
                },
            )
            fall, spring = f"{sid}-fall", f"{sid}-spring"
            self.bundle.add(
                fmt.ACADEMIC_SESSIONS.name,
                {
                    "sourcedId": fall,
                    "title": f"Fall {year - 1}",
                    "type": "semester",
                    "startDate": f"{year - 1}-08-15",
                    "endDate": f"{year - 1}-12-19",
                    "parentSourcedId": sid,
                    "schoolYear": str(year),
                },
            )
            self.bundle.add(
                fmt.ACADEMIC_SESSIONS.name,
                {
                    "sourcedId": spring,
                    "title": f"Spring {year}",
                    "type": "semester",
                    "startDate": f"{year}-01-06",
                    "endDate": f"{year}-06-12",
                    "parentSourcedId": sid,
                    "schoolYear": str(year),
                },
            )
            self.sessions[year] = {"year": sid, "fall": fall, "spring": spring}

    def add_school(
        self, prefix: str, names: tuple[str, ...], kind: str, index: int, grades: tuple[str, ...]
    ) -> _School:
        base = names[index % len(names)]
        name = (
            f"{base} {kind}" if index < len(names) else f"{base} {kind} {index // len(names) + 1}"
        )
        address = self.address()
        school = _School(
            sid=f"sch-{prefix}-{index + 1:02d}",
            name=name,
            grades=grades,
            low=grades[0],
            high=grades[-1],
            street=address["street1"],
            postal_code=address["postalCode"],
        )
        self.bundle.add(
            fmt.ORGS.name,
            {
                "sourcedId": school.sid,
                "name": name,
                "type": "school",
                "identifier": f"{prefix.upper()}{index + 1:03d}",
                "parentSourcedId": self.district_sid,
            },
        )
        self.bundle.add(
            fmt.SCHOOLS.name,
            {
                "schoolSourcedId": school.sid,
                "lowGrade": school.low,
                "highGrade": school.high,
                "street1": school.street,
                "street2": "",
                "city": CITY,
                "state": STATE,
                "postalCode": school.postal_code,
                "phone": self.phone(),
            },
        )
        admin_sid = self.next_id("adm", 4)
        given = self.rng.choice(ENGLISH_GIVEN_F + SPANISH_GIVEN_F)
        family = self.rng.choice(ENGLISH_FAMILY + SPANISH_FAMILY)
        self.bundle.add(
            fmt.USERS.name,
            {
                "sourcedId": admin_sid,
                "enabledUser": "true",
                "orgSourcedIds": school.sid,
                "role": "administrator",
                "givenName": given,
                "familyName": family,
                "email": self.email(given, family),
            },
        )
        return school

    def school_for(self, grade: str, family_index: int) -> _School:
        level = (
            "elementary"
            if grade in ELEMENTARY_GRADES
            else "middle"
            if grade in MIDDLE_GRADES
            else "high"
        )
        choices = self.schools[level]
        return choices[family_index % len(choices)]

    # -- families -----------------------------------------------------------------

    def person(self, spanish: bool, female: bool) -> tuple[str, str]:
        if spanish:
            given = self.rng.choice(SPANISH_GIVEN_F if female else SPANISH_GIVEN_M)
        else:
            given = self.rng.choice(ENGLISH_GIVEN_F if female else ENGLISH_GIVEN_M)
        return given, self.rng.choice(SPANISH_FAMILY if spanish else ENGLISH_FAMILY)

    def add_guardian(
        self, given: str, family: str, role: str, with_email: bool, children: list[str]
    ) -> str:
        sid = self.next_id("par")
        mobile = self.phone()
        row = {
            "sourcedId": sid,
            "enabledUser": "true",
            "orgSourcedIds": self.district_sid,
            "role": role,
            "givenName": given,
            "familyName": family,
            "email": self.email(given, family) if with_email else "",
            "sms": mobile,
            "phone": self.phone() if self.rng.random() < 0.4 else "",
            "agentSourcedIds": ",".join(children),
        }
        self.bundle.add(fmt.USERS.name, row)
        self.guardian_rows[sid] = row
        return sid

    def add_household(self, spanish: bool, address: dict[str, str] | None = None) -> str:
        sid = self.next_id("hh")
        self.bundle.add(
            fmt.HOUSEHOLDS.name,
            {
                "householdSourcedId": sid,
                **(address or self.address()),
                "phone": self.phone() if self.rng.random() < 0.5 else "",
                "language": "es" if spanish else "en",
            },
        )
        return sid

    def add_family(self, index: int) -> None:
        rng = self.rng
        spanish = rng.random() < 0.28
        size = rng.choices((1, 2, 3, 4), weights=(45, 38, 13, 4))[0]
        shape = rng.choices(("two", "single", "split", "grandparent"), weights=(62, 24, 10, 4))[0]
        mother_given, family = self.person(spanish, female=True)
        father_given, father_family = self.person(spanish, female=False)
        if rng.random() < 0.7:
            father_family = family

        children: list[str] = []
        for _ in range(size):
            grade = rng.choice(("KG", *PROMOTION_ORDER[PROMOTION_ORDER.index("01") :]))
            school = self.school_for(grade, index)
            child_given, _ = self.person(spanish, female=rng.random() < 0.5)
            sid = self.next_id("stu")
            children.append(sid)
            self.students_by_school.setdefault(school.sid, []).append((sid, grade))
            self.bundle.add(
                fmt.USERS.name,
                {
                    "sourcedId": sid,
                    "enabledUser": "true",
                    "orgSourcedIds": school.sid,
                    "role": "student",
                    "givenName": child_given,
                    "familyName": family,
                    "middleName": rng.choice(("", "", "Marie", "James", "Guadalupe", "Lee")),
                    "identifier": self.state_id(),
                    "grades": grade,
                },
            )
            self.bundle.add(
                fmt.DEMOGRAPHICS.name,
                {
                    "sourcedId": sid,
                    "birthDate": self.birth_date(grade).isoformat(),
                    "sex": rng.choice(("female", "male")),
                },
            )

        household = self.add_household(spanish)
        members: list[tuple[str, str, str, str, str]] = []
        with_email = rng.random() >= 0.15
        if shape == "grandparent":
            given, grand_family = self.person(spanish, female=True)
            grandmother = self.add_guardian(given, grand_family, "relative", with_email, children)
            members.append((household, grandmother, "guardian", "grandparent", "true"))
        else:
            mother = self.add_guardian(mother_given, family, "parent", with_email, children)
            members.append((household, mother, "guardian", "mother", "true"))
        if shape == "two":
            father = self.add_guardian(
                father_given, father_family, "parent", rng.random() >= 0.3, children
            )
            members.append((household, father, "guardian", "father", "true"))
        for child in children:
            members.append((household, child, "student", "true", ""))
        if shape == "split":
            # The children live mainly with their mother and also with their father.
            second = self.add_household(spanish and rng.random() < 0.8)
            father = self.add_guardian(
                father_given, father_family, "parent", rng.random() >= 0.2, children
            )
            members.append((second, father, "guardian", "father", "true"))
            for child in children:
                members.append((second, child, "student", "false", ""))
        if shape != "grandparent" and self.grandparents and rng.random() < 0.03:
            # A grandparent who raises grandchildren in one household is also a
            # guardian (without education rights) in another one.
            grandparent = self.grandparents[-1]
            members.append((household, grandparent, "guardian", "grandparent", "false"))
            row = self.guardian_rows[grandparent]
            row["agentSourcedIds"] = ",".join([row["agentSourcedIds"], *children])
        if shape == "grandparent":
            self.grandparents.append(members[0][1])

        for household_sid, user, role, flag, rights in members:
            if role == "student":
                self.bundle.add(
                    fmt.HOUSEHOLD_MEMBERS.name,
                    {
                        "householdSourcedId": household_sid,
                        "userSourcedId": user,
                        "role": "student",
                        "primaryHousehold": flag,
                    },
                )
            else:
                self.bundle.add(
                    fmt.HOUSEHOLD_MEMBERS.name,
                    {
                        "householdSourcedId": household_sid,
                        "userSourcedId": user,
                        "role": "guardian",
                        "relationship": flag,
                        "educationRights": rights,
                    },
                )
        for priority in range(1, rng.choice((1, 2, 2, 3)) + 1):
            given, contact_family = self.person(spanish, female=rng.random() < 0.6)
            self.bundle.add(
                fmt.EMERGENCY_CONTACTS.name,
                {
                    "householdSourcedId": household,
                    "name": f"{given} {contact_family}",
                    "relationship": rng.choice(CONTACT_RELATIONSHIPS),
                    "phone": self.phone(),
                    "priority": str(priority),
                },
            )

    # -- classes ------------------------------------------------------------------

    def add_teacher(self, school: _School) -> str:
        sid = self.next_id("tch", 5)
        given, family = self.person(self.rng.random() < 0.2, female=self.rng.random() < 0.7)
        self.bundle.add(
            fmt.USERS.name,
            {
                "sourcedId": sid,
                "enabledUser": "true",
                "orgSourcedIds": school.sid,
                "role": "teacher",
                "givenName": given,
                "familyName": family,
                "email": self.email(given, family),
            },
        )
        return sid

    def teacher_for(self, school: _School, subject: str, elementary: bool) -> str:
        """An elementary teacher has one class; a secondary teacher teaches five
        sections of their subject."""
        key = (school.sid, subject)
        current = self.teaching_load.get(key)
        if elementary or current is None or current[1] >= 5:
            current = (self.add_teacher(school), 0)
        self.teaching_load[key] = (current[0], current[1] + 1)
        return current[0]

    def add_classes(self) -> None:
        sessions = self.sessions[self.year]
        terms = f"{sessions['fall']},{sessions['spring']}"
        begin, end = f"{self.year - 1}-08-15", f"{self.year}-06-12"
        for school in (s for level in self.schools.values() for s in level):
            roster = self.students_by_school.get(school.sid, [])
            by_grade: dict[str, list[str]] = {}
            for sid, grade in roster:
                by_grade.setdefault(grade, []).append(sid)
            elementary = school.grades == ELEMENTARY_GRADES
            subjects = (("Homeroom", "HR"),) if elementary else SECONDARY_SUBJECTS
            for grade in school.grades:
                students = by_grade.get(grade, [])
                size = 24 if elementary else 30
                sections = max(1, -(-len(students) // size))
                for title, code in subjects:
                    course = self.next_id("crs", 5)
                    self.bundle.add(
                        fmt.COURSES.name,
                        {
                            "sourcedId": course,
                            "schoolYearSourcedId": sessions["year"],
                            "title": f"{title} {grade}",
                            "courseCode": f"{code}-{grade}",
                            "grades": grade,
                            "orgSourcedId": school.sid,
                            "subjects": title,
                        },
                    )
                    for section in range(sections):
                        class_sid = self.next_id("cls", 6)
                        teacher = self.teacher_for(school, title, elementary)
                        self.bundle.add(
                            fmt.CLASSES.name,
                            {
                                "sourcedId": class_sid,
                                "title": f"{title} {grade}-{section + 1}",
                                "grades": grade,
                                "courseSourcedId": course,
                                "classCode": f"{code}-{grade}-{section + 1}",
                                "classType": "homeroom" if elementary else "scheduled",
                                "location": f"Room {self.rng.randrange(1, 60)}",
                                "schoolSourcedId": school.sid,
                                "termSourcedIds": terms,
                                "subjects": title,
                                "periods": ""
                                if elementary
                                else str(SECONDARY_SUBJECTS.index((title, code)) + 1),
                            },
                        )
                        self.bundle.add(
                            fmt.ENROLLMENTS.name,
                            {
                                "sourcedId": self.next_id("enr", 8),
                                "classSourcedId": class_sid,
                                "schoolSourcedId": school.sid,
                                "userSourcedId": teacher,
                                "role": "teacher",
                                "primary": "true",
                                "beginDate": begin,
                                "endDate": end,
                            },
                        )
                        for student in students[section::sections]:
                            self.bundle.add(
                                fmt.ENROLLMENTS.name,
                                {
                                    "sourcedId": self.next_id("enr", 8),
                                    "classSourcedId": class_sid,
                                    "schoolSourcedId": school.sid,
                                    "userSourcedId": student,
                                    "role": "student",
                                    "primary": "false",
                                    "beginDate": begin,
                                    "endDate": end,
                                },
                            )


def generate_district(
    folder: Path,
    *,
    households: int,
    seed: int,
    school_year: int,
    district_name: str,
) -> dict[str, int]:
    """Write a district of ``households`` families as a roster bundle into ``folder``.

    Returns the number of rows written per file.
    """
    generator = _Generator(households, seed, school_year, district_name)
    bundle = generator.generate()
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    manifest = [("manifest.version", "1.0"), ("oneroster.version", "1.1")]
    manifest += [(f.manifest_key, "bulk") for f in fmt.FILES if f.oneroster]
    manifest += [(f"file.{name}", "absent") for name in fmt.UNUSED_ONEROSTER_FILES]
    manifest += [("source.systemName", "synthetic district")]
    with (folder / fmt.MANIFEST).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fmt.MANIFEST_COLUMNS)
        writer.writerows(manifest)
    for file_format in fmt.FILES:
        rows = bundle.rows.get(file_format.name, [])
        # users.csv as a spreadsheet would save it: with a byte-order mark.
        encoding = "utf-8-sig" if file_format is fmt.USERS else "utf-8"
        with (folder / file_format.name).open("w", encoding=encoding, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(file_format.columns)
            for row in rows:
                writer.writerow([row.get(column, "") for column in file_format.columns])
        counts[file_format.name] = len(rows)
    return counts
