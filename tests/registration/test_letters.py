"""The mail merge: `issue_activation_codes` writes the CSV and the letters PDF."""

from __future__ import annotations

import csv
import datetime
import importlib
import io
import json
import stat

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pypdf import PdfReader

from config.encryption import encrypt_text
from documents.letters import Letter
from documents.models import LetterChunk, LetterRun
from documents.services import letter_chunk_render
from documents.tasks import letter_chunk_render_task
from registration.activation import code_normalise
from registration.models import ActivationCode, Guardian, Student
from registration.services import activation_verify
from tests.documents.sample_letters import sample_letter
from workflow.models import AuditEvent

SECONDARY = {"stu-002", "stu-004", "stu-007", "stu-008", "stu-009"}  # grades 6 and up
GUARDIANS = {f"par-{n:03d}" for n in range(1, 12)}


def read_csv(path):
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def page_texts(path):
    return [" ".join((page.extract_text() or "").split()) for page in PdfReader(path).pages]


@pytest.fixture
def merge(transactional_db, sample_district, tmp_path, settings, capsys):
    """Runs the command with real commits: chunks are queued after commit, as in
    production, and rendered by the in-process worker."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ACTIVATION_LETTER_CHUNK = 4  # several chunks, joined in order

    def run(*args):
        out, letters = tmp_path / "codes.csv", tmp_path / "letters.pdf"
        call_command("issue_activation_codes", "--out", str(out), "--letters", str(letters), *args)
        return out, letters, capsys.readouterr().out

    return run


def test_one_code_per_guardian_and_secondary_student(merge):
    out, _letters, printed = merge()
    rows = read_csv(out)
    assert {r["sourced_id"] for r in rows if r["kind"] == "guardian"} == GUARDIANS
    assert {r["sourced_id"] for r in rows if r["kind"] == "student"} == SECONDARY
    assert "Issued 16 codes (11 guardians, 5 students)" in printed
    assert list(rows[0]) == [
        "kind",
        "sourced_id",
        "name",
        "household",
        "street1",
        "street2",
        "city",
        "state",
        "postal_code",
        "language",
        "code",
        "expires_on",
    ]
    jose = next(r for r in rows if r["sourced_id"] == "par-002")
    assert (
        jose["name"],
        jose["household"],
        jose["street1"],
        jose["street2"],
        jose["city"],
        jose["state"],
        jose["postal_code"],
        jose["language"],
    ) == (
        "José Ángel García",
        "hh-001",
        "1450 Alameda de las Pulgas",
        "Apt 4, Building B",
        "Riverside",
        "CA",
        "95202",
        "es",
    )
    assert jose["expires_on"] == (datetime.date.today() + datetime.timedelta(days=90)).isoformat()
    # Sorted by postal code for bulk mail.
    postal_codes = [r["postal_code"] for r in rows]
    assert postal_codes == sorted(postal_codes)
    # Only the file's owner can read it.
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_every_code_in_the_file_opens_its_account(merge):
    out, _letters, _printed = merge()
    facts = {"par-002": datetime.date(2018, 3, 14), "stu-004": datetime.date(2011, 1, 22)}
    rows = {r["sourced_id"]: r for r in read_csv(out)}
    for sourced_id, birth_date in facts.items():
        code = activation_verify(
            code_text=rows[sourced_id]["code"], birth_date=birth_date, ip_address="127.0.0.1"
        )
        assert code is not None and code.person.sourced_id == sourced_id


def test_the_letters_one_page_each_with_name_code_and_language(merge):
    out, letters, printed = merge()
    rows = read_csv(out)
    pages = page_texts(letters)
    assert len(pages) == len(rows) == 16
    assert "Letters: 16 pages" in printed
    for row, text in zip(rows, pages, strict=True):
        assert row["name"] in text, row["name"]
        assert row["code"] in text
        assert "the parent/guardian of" not in text.lower()
        if row["language"] == "es":
            assert f"Estimado/a {row['name']}" in text
            assert "Su código:" in text
        else:
            assert f"Dear {row['name']}" in text
            assert "Your code:" in text
        assert "/activate/" in text
        assert "registration@riverside.example.org" in text
    by_name = {row["name"]: text for row, text in zip(rows, pages, strict=True)}
    assert "your own date of birth" in by_name["Zoë O'Brien"]
    assert "Mateo y Sofía" in by_name["José Ángel García"]
    assert "Bjørnstad" in by_name["Ingrid Bjørnstad"]
    # The file for the printer says its language, and is tagged: each letter's section,
    # on its page, says the letter's (tests/documents/test_pdf_join.py checks the rest).
    reader = PdfReader(letters)
    catalog = reader.trailer["/Root"]
    assert catalog["/Lang"] == "en" and catalog["/MarkInfo"]["/Marked"].value is True
    sections = {
        section.get_object().raw_get("/Pg").idnum: section.get_object().get("/Lang", "en")
        for document in catalog["/StructTreeRoot"]["/K"]
        for section in document.get_object()["/K"]
    }
    assert [sections[page.indirect_reference.idnum] for page in reader.pages] == [
        "es" if row["language"] == "es" else "en" for row in rows
    ]


def test_a_long_run_is_split_into_files_of_whole_chunks(merge, settings, tmp_path):
    """Joining a tagged PDF holds it whole in memory: a run longer than
    ``ACTIVATION_LETTERS_PER_FILE`` goes to several numbered files, each tagged, each
    of whole chunks, together every letter in the CSV's order."""
    settings.ACTIVATION_LETTERS_PER_FILE = 9  # two chunks of 4; a third would be 12
    out, letters, printed = merge()
    rows = read_csv(out)
    files = [tmp_path / f"letters-{n}.pdf" for n in (1, 2)]
    assert not letters.exists()
    assert f"Letters: 16 pages in 2 files of at most 9 letters each: {files[0]}, {files[1]}" in (
        printed
    )
    assert [len(PdfReader(path).pages) for path in files] == [8, 8]
    pages = [text for path in files for text in page_texts(path)]
    assert [row["code"] in text for row, text in zip(rows, pages, strict=True)] == [True] * 16
    for path in files:
        catalog = PdfReader(path).trailer["/Root"]
        assert catalog["/Lang"] == "en" and "/StructTreeRoot" in catalog
    assert all(chunk.rendered_at and not chunk.pdf for chunk in LetterChunk.objects.all())


def test_the_files_of_a_run_are_numbered_to_sort_in_order(tmp_path):
    from documents.services import letter_run_files

    assert letter_run_files(tmp_path / "letters.pdf", 1) == [tmp_path / "letters.pdf"]
    names = [path.name for path in letter_run_files(tmp_path / "letters.pdf", 12)]
    assert names[:2] == ["letters-01.pdf", "letters-02.pdf"] and names[-1] == "letters-12.pdf"
    assert names == sorted(names)


def test_a_letter_alone_is_a_tagged_pdf_in_its_language(sample_district):
    from documents.letters import letters_pdf
    from tests.documents.sample_letters import sample_letter as letter

    alone = PdfReader(io.BytesIO(letters_pdf([letter("Ana", "es")]))).trailer["/Root"]
    assert alone["/Lang"] == "es"
    assert "/StructTreeRoot" in alone and alone["/MarkInfo"]["/Marked"]
    mixed = PdfReader(io.BytesIO(letters_pdf([letter("Ana", "es"), letter("Bo", "en")])))
    assert mixed.trailer["/Root"]["/Lang"] == "en"


def test_chunks_are_rendered_by_tasks_with_sealed_payloads_and_removed_after(merge, monkeypatch):
    sent = []
    real_delay = letter_chunk_render_task.delay

    def recording_delay(chunk_id, sealed):
        sent.append(sealed)
        return real_delay(chunk_id, sealed)

    monkeypatch.setattr(letter_chunk_render_task, "delay", recording_delay)
    out, _letters, _printed = merge()
    codes = [r["code"] for r in read_csv(out)]
    assert len(sent) == 4  # 16 letters, 4 per chunk
    for payload in sent:
        for code in codes:
            assert code not in payload and code_normalise(code) not in payload
    chunks = LetterChunk.objects.all()
    assert chunks.count() == 4
    assert all(chunk.rendered_at and not chunk.pdf for chunk in chunks)


def test_issuing_again_makes_the_earlier_codes_stop_working(merge):
    first, _letters, _printed = merge()
    old = {r["sourced_id"]: r["code"] for r in read_csv(first)}
    merge()
    code = activation_verify(
        code_text=old["par-002"], birth_date=datetime.date(2018, 3, 14), ip_address="127.0.0.1"
    )
    assert code is None
    assert ActivationCode.objects.filter(state="issued").count() == 16
    assert ActivationCode.objects.filter(state="revoked").count() == 16


def test_only_unactivated_skips_people_with_an_account(merge, guardian_user):
    out, _letters, _printed = merge("--only-unactivated")
    ids = {r["sourced_id"] for r in read_csv(out)}
    assert "par-002" not in ids
    assert len(ids) == 15


def test_one_school(merge):
    out, _letters, _printed = merge("--school", "sch-high")
    ids = {r["sourced_id"] for r in read_csv(out)}
    # Zoë, Gianna, Minh and their guardians.
    assert ids == {"stu-004", "stu-007", "stu-008", "par-003", "par-004", "par-008", "par-009"}


def test_an_unknown_school_is_refused(sample_district, tmp_path):
    with pytest.raises(CommandError, match="no school has the sourcedId 'nope'"):
        call_command("issue_activation_codes", "--out", str(tmp_path / "c.csv"), "--school", "nope")


def test_the_run_is_audited_without_codes(merge):
    out, _letters, _printed = merge()
    event = AuditEvent.objects.get(object_type="registration.activationcode", action="create")
    assert event.detail["codes"] == 16
    for row in read_csv(out):
        assert row["code"] not in str(event.detail)


def test_a_guardian_without_children_gets_no_letter(merge):
    lonely = Guardian.objects.create(sourced_id="par-999", given_name="Pat", family_name="Lee")
    out, _letters, _printed = merge()
    assert lonely.sourced_id not in {r["sourced_id"] for r in read_csv(out)}
    assert not Student.objects.filter(guardian_links__guardian=lonely).exists()


def _chunk_of_one_letter(code: str) -> tuple[LetterChunk, Letter]:
    run = LetterRun.objects.create(letters=1)
    chunk = LetterChunk.objects.create(run=run, index=0, letters=1)
    letter = sample_letter("José Ángel García", "en", sourced_id="par-002", code=code)
    return chunk, letter


def test_a_rendered_chunk_waits_in_the_private_storage(sample_district, settings, tmp_path):
    """Until it is joined a chunk holds codes in clear: never under MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"
    chunk, letter = _chunk_of_one_letter("ABCD-EFGH-JKMN-PQRS")
    letter_chunk_render(chunk_id=chunk.pk, sealed=encrypt_text(json.dumps([letter.as_json()])))
    chunk.refresh_from_db()
    assert chunk.pdf.path.startswith(str(settings.PRIVATE_MEDIA_ROOT))
    assert (settings.PRIVATE_MEDIA_ROOT / chunk.pdf.name).read_bytes().startswith(b"%PDF")
    assert not (tmp_path / "media").exists()
    with pytest.raises(ValueError, match="no URL"):
        chunk.pdf.url


def test_the_migration_moves_waiting_chunks_to_the_private_storage(
    sample_district, settings, tmp_path
):
    from django.apps import apps

    settings.MEDIA_ROOT = tmp_path / "media"
    moving = importlib.import_module("documents.migrations.0004_letter_chunks_private")
    chunk, _letter = _chunk_of_one_letter("ABCD-EFGH-JKMN-PQRS")
    name = "letter-chunks/run-1-0.pdf"
    (tmp_path / "media" / "letter-chunks").mkdir(parents=True)
    (tmp_path / "media" / name).write_bytes(b"%PDF-1.7 codes")
    LetterChunk.objects.filter(pk=chunk.pk).update(pdf=name)

    moving.to_private(apps, None)
    assert (settings.PRIVATE_MEDIA_ROOT / name).read_bytes() == b"%PDF-1.7 codes"
    assert not (tmp_path / "media" / name).exists()
    moving.to_media(apps, None)  # reversed
    assert (tmp_path / "media" / name).read_bytes() == b"%PDF-1.7 codes"
    assert not (settings.PRIVATE_MEDIA_ROOT / name).exists()
    assert LetterChunk.objects.get(pk=chunk.pk).pdf.name == name
