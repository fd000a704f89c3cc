"""Reading a roster bundle: a folder or a zip of CSV files.

Files are decoded as UTF-8 (with or without a byte-order mark), with any line
endings. Every problem found is kept with its file, line and column, so that the
report can say exactly where to look.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from registration.roster.format import MANIFEST, FileFormat

# A roster file larger than this is refused rather than read into memory (a
# million-student users.csv is about 250 MB).
MAX_FILE_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str
    column: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        column = f" column {self.column}:" if self.column else ""
        return f"{where}:{column} {self.message}"


@dataclass
class Problems:
    """Errors stop an import; warnings are reported and the import goes on."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, file: str, line: int | None, message: str, column: str | None = None) -> None:
        self.errors.append(Problem(file, line, message, column))

    def warning(self, file: str, line: int | None, message: str, column: str | None = None) -> None:
        self.warnings.append(Problem(file, line, message, column, severity="warning"))


class Row:
    """One data line of a CSV file, its values stripped and NFC-normalised.

    A district's bundle has millions of lines: each row keeps its values in a tuple
    and shares its file's column positions (a dict per row took three times the
    memory), and equal values within a file are one string object."""

    __slots__ = ("_columns", "_values", "line")

    def __init__(self, line: int, columns: dict[str, int], values: tuple[str, ...]) -> None:
        self.line = line
        self._columns = columns
        self._values = values

    def __getitem__(self, column: str) -> str:
        return self._values[self._columns[column]]

    @property
    def values(self) -> dict[str, str]:
        return {column: self._values[index] for column, index in self._columns.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and (self.line, self.values) == (other.line, other.values)

    def __hash__(self) -> int:
        return hash((self.line, self._values))

    def __repr__(self) -> str:
        return f"Row({self.line}, {self.values!r})"


class RosterSourceError(Exception):
    """The path is not a readable roster bundle at all."""


class BundleSource:
    """The files of a bundle, by name, from a folder or a zip archive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, str] = {}
        if path.is_dir():
            self._members = {p.name: str(p) for p in path.iterdir() if p.is_file()}
        elif path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise RosterSourceError(f"{path.name} is neither a folder nor a zip file") from exc
            self._members = self._zip_members(self._zip)
        else:
            raise RosterSourceError(f"{path} does not exist")

    @staticmethod
    def _zip_members(archive: zipfile.ZipFile) -> dict[str, str]:
        # Bundles are often zipped with their folder: accept files at the top level
        # or inside the one folder that holds manifest.csv.
        names = [i.filename for i in archive.infolist() if not i.is_dir()]
        folder = ""
        for name in names:
            if name.rsplit("/", 1)[-1] == MANIFEST:
                folder = name[: -len(MANIFEST)]
                break
        return {
            name[len(folder) :]: name
            for name in names
            if name.startswith(folder) and "/" not in name[len(folder) :]
        }

    def has(self, name: str) -> bool:
        return name in self._members

    def read_bytes(self, name: str) -> bytes:
        member = self._members[name]
        if self._zip is not None:
            info = self._zip.getinfo(member)
            if info.file_size > MAX_FILE_BYTES:
                raise RosterSourceError(f"{name} is larger than {MAX_FILE_BYTES} bytes")
            return self._zip.read(member)
        path = Path(member)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise RosterSourceError(f"{name} is larger than {MAX_FILE_BYTES} bytes")
        return path.read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _normalise(value: str) -> str:
    value = value.strip()
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def decode(name: str, data: bytes, problems: Problems) -> str | None:
    """The file's text, or None (with an error naming the line) if it is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        problems.error(
            name,
            line,
            f"byte 0x{data[exc.start]:02X} at character {exc.start - line_start + 1} is not "
            "UTF-8; save the file as UTF-8 (CSV UTF-8 in Excel) and import it again",
        )
        return None


def parse_csv(
    name: str, text: str, columns: tuple[str, ...], problems: Problems
) -> list[Row] | None:
    """Rows of a CSV text whose header must name exactly ``columns`` (in any order)."""
    if not text.strip():
        problems.error(name, 1, f"the file is empty; it needs the header line {','.join(columns)}")
        return None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [_normalise(h) for h in next(reader)]
    except csv.Error as exc:
        problems.error(name, 1, f"the header line is not valid CSV ({exc})")
        return None
    missing = [c for c in columns if c not in header]
    unexpected = [h for h in header if h not in columns]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if missing or unexpected or duplicated:
        parts = []
        if missing:
            parts.append("missing column " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected column " + ", ".join(repr(u) for u in unexpected))
        if duplicated:
            parts.append("repeated column " + ", ".join(duplicated))
        problems.error(
            name, 1, "wrong header: " + "; ".join(parts) + f" (expected {','.join(columns)})"
        )
        return None
    rows: list[Row] = []
    ascii_only = text.isascii()  # ids, dates and codes, like enrollments.csv
    width = len(header)
    positions = {column: index for index, column in enumerate(header)}
    seen: dict[str, str] = {}  # one string object per distinct value
    previous_end = reader.line_num
    try:
        for record in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if len(record) != width:
                problems.error(name, line, f"expected {width} fields, found {len(record)}")
                continue
            normalised = list(map(str.strip, record))
            # Most rows are plain ASCII: one test for the row instead of one per cell.
            if not ascii_only and not "".join(normalised).isascii():
                normalised = [
                    v if v.isascii() else unicodedata.normalize("NFC", v) for v in normalised
                ]
            values = tuple(map(seen.setdefault, normalised, normalised))
            rows.append(Row(line, positions, values))
    except csv.Error as exc:
        problems.error(name, previous_end + 1, f"not valid CSV ({exc})")
        return None
    return rows


def read_table(source: BundleSource, fmt: FileFormat, problems: Problems) -> list[Row] | None:
    """The rows of one file of the bundle, or None when it is absent or unreadable."""
    if not source.has(fmt.name):
        if fmt.required:
            problems.error(fmt.name, None, "required file is missing from the bundle")
        return None
    text = decode(fmt.name, source.read_bytes(fmt.name), problems)
    if text is None:
        return None
    return parse_csv(fmt.name, text, fmt.columns, problems)
