"""The files of a roster bundle and their columns (see docs/roster-format.md).

OneRoster 1.1 CSV files, plus this project's extension files. The importer checks
headers against these lists and the exporter writes them in this order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileFormat:
    name: str
    columns: tuple[str, ...]
    required: bool = True
    oneroster: bool = True

    @property
    def manifest_key(self) -> str:
        return f"file.{self.name.removesuffix('.csv')}"


MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("propertyName", "value")

ORGS = FileFormat(
    "orgs.csv",
    ("sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"),
)
ACADEMIC_SESSIONS = FileFormat(
    "academicSessions.csv",
    (
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "type",
        "startDate",
        "endDate",
        "parentSourcedId",
        "schoolYear",
    ),
)
USERS = FileFormat(
    "users.csv",
    (
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "orgSourcedIds",
        "role",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
    ),
)
COURSES = FileFormat(
    "courses.csv",
    (
        "sourcedId",
        "status",
        "dateLastModified",
        "schoolYearSourcedId",
        "title",
        "courseCode",
        "grades",
        "orgSourcedId",
        "subjects",
        "subjectCodes",
    ),
)
CLASSES = FileFormat(
    "classes.csv",
    (
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "grades",
        "courseSourcedId",
        "classCode",
        "classType",
        "location",
        "schoolSourcedId",
        "termSourcedIds",
        "subjects",
        "subjectCodes",
        "periods",
    ),
)
ENROLLMENTS = FileFormat(
    "enrollments.csv",
    (
        "sourcedId",
        "status",
        "dateLastModified",
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
        "primary",
        "beginDate",
        "endDate",
    ),
)
DEMOGRAPHICS = FileFormat(
    "demographics.csv",
    (
        "sourcedId",
        "status",
        "dateLastModified",
        "birthDate",
        "sex",
        "americanIndianOrAlaskaNative",
        "asian",
        "blackOrAfricanAmerican",
        "nativeHawaiianOrOtherPacificIslander",
        "white",
        "demographicRaceTwoOrMoreRaces",
        "hispanicOrLatinoEthnicity",
        "countryOfBirthCode",
        "stateOfBirthAbbreviation",
        "cityOfBirth",
        "publicSchoolResidenceStatus",
    ),
)
HOUSEHOLDS = FileFormat(
    "households.csv",
    (
        "householdSourcedId",
        "street1",
        "street2",
        "city",
        "state",
        "postalCode",
        "phone",
        "language",
    ),
    oneroster=False,
)
HOUSEHOLD_MEMBERS = FileFormat(
    "householdMembers.csv",
    (
        "householdSourcedId",
        "userSourcedId",
        "role",
        "primaryHousehold",
        "relationship",
        "educationRights",
    ),
    oneroster=False,
)
EMERGENCY_CONTACTS = FileFormat(
    "emergencyContacts.csv",
    ("householdSourcedId", "name", "relationship", "phone", "priority"),
    required=False,
    oneroster=False,
)
SCHOOLS = FileFormat(
    "schools.csv",
    (
        "schoolSourcedId",
        "lowGrade",
        "highGrade",
        "street1",
        "street2",
        "city",
        "state",
        "postalCode",
        "phone",
    ),
    required=False,
    oneroster=False,
)

# In the order the importer reads them and the exporter writes them.
FILES: tuple[FileFormat, ...] = (
    ORGS,
    SCHOOLS,
    ACADEMIC_SESSIONS,
    HOUSEHOLDS,
    USERS,
    DEMOGRAPHICS,
    COURSES,
    CLASSES,
    ENROLLMENTS,
    HOUSEHOLD_MEMBERS,
    EMERGENCY_CONTACTS,
)
FILES_BY_NAME = {f.name: f for f in FILES}

# OneRoster 1.1 files this product does not use; the manifest says they are absent.
UNUSED_ONEROSTER_FILES = (
    "categories",
    "classResources",
    "courseResources",
    "lineItems",
    "resources",
    "results",
)
