"""Joined PDFs stay tagged: the printer's file of activation letters, made of chunks
rendered apart, has one structure tree over all of them, pointing at its own pages,
with each letter in its language."""

from __future__ import annotations

import datetime
import io
import re

import pytest
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from documents.letters import letters_pdf
from documents.pdf_join import tagged_join
from documents.rendering import pdf_from_html
from tests.documents.sample_letters import sample_letter

LANGUAGE_MARKS = {"en": "Your code:", "es": "Su código:", "zh-hans": "您的激活码"}


@pytest.fixture(scope="module")
def chunks() -> list[bytes]:
    """Three chunks as the workers render them (in the district's language), the last
    a letter alone in Chinese, rendered as a re-issued letter is (in its own)."""
    today = datetime.date(2026, 3, 2)
    return [
        letters_pdf(
            [sample_letter("Ana", "es"), sample_letter("Bo", "en"), sample_letter("Li", "zh-hans")],
            today=today,
            language="en",
        ),
        letters_pdf(
            [sample_letter("Cy", "en"), sample_letter("Dolores", "es")], today=today, language="en"
        ),
        letters_pdf([sample_letter("Wei", "zh-hans")], today=today),
    ]


@pytest.fixture(scope="module")
def joined(chunks) -> PdfReader:
    out = io.BytesIO()
    pages = tagged_join([io.BytesIO(chunk) for chunk in chunks], out, lang="en")
    assert pages == 6
    return PdfReader(io.BytesIO(out.getvalue()))


def _elements(reader: PdfReader) -> dict[int, DictionaryObject]:
    """Every structure element reached from the root, by object number; reaching one
    twice fails."""
    found: dict[int, DictionaryObject] = {}

    def walk(kids) -> None:
        kids = kids.get_object() if kids is not None else ArrayObject()
        for kid in kids if isinstance(kids, ArrayObject) else [kids]:
            if not isinstance(kid, IndirectObject):
                continue  # a marked-content id
            element = kid.get_object()
            if "/S" not in element:
                continue  # a reference to an annotation or marked content
            assert kid.idnum not in found, f"{kid} reached twice"
            found[kid.idnum] = element
            walk(element.get("/K"))

    walk(reader.root_object["/StructTreeRoot"]["/K"])
    return found


def _parent_tree(reader: PdfReader) -> list[tuple[int, object]]:
    nums = reader.root_object["/StructTreeRoot"]["/ParentTree"]["/Nums"]
    return [(int(nums[i]), nums[i + 1]) for i in range(0, len(nums), 2)]


def _language(element: DictionaryObject, reader: PdfReader) -> str:
    """An element's language: its own, its nearest ancestor's, else the document's."""
    while element.get("/Type") != "/StructTreeRoot":
        if "/Lang" in element:
            return str(element["/Lang"])
        element = element["/P"].get_object()
    return str(reader.root_object["/Lang"])


def _text(page) -> str:
    return " ".join((page.extract_text() or "").split())


def test_the_pages_are_the_chunks_in_order(chunks, joined):
    expected = [_text(page) for chunk in chunks for page in PdfReader(io.BytesIO(chunk)).pages]
    assert [_text(page) for page in joined.pages] == expected
    assert "Estimado/a Ana" in expected[0] and "Dear Cy" in expected[3]
    # No page copied twice: the file holds as many page objects as it shows pages.
    page_objects = [
        number
        for number in joined.xref[0]
        if isinstance(joined.get_object(number), DictionaryObject)
        and joined.get_object(number).get("/Type") == "/Page"
    ]
    assert len(page_objects) == len(joined.pages) == 6


def test_the_joined_file_is_tagged_in_the_districts_language(chunks, joined):
    catalog = joined.root_object
    assert catalog["/Lang"] == "en"
    assert catalog["/MarkInfo"]["/Marked"].value is True
    assert catalog["/StructTreeRoot"]["/Type"] == "/StructTreeRoot"
    sources = [PdfReader(io.BytesIO(chunk)) for chunk in chunks]
    # Each chunk's /Document under the one root, in order.
    tops = catalog["/StructTreeRoot"]["/K"]
    assert [top.get_object()["/S"] for top in tops] == ["/Document"] * 3
    first_pages = [top.get_object()["/K"][0].get_object().raw_get("/Pg").idnum for top in tops]
    assert first_pages == [joined.pages[n].indirect_reference.idnum for n in (0, 3, 5)]
    assert all(
        top.get_object().raw_get("/P").idnum == catalog.raw_get("/StructTreeRoot").idnum
        for top in tops
    )
    assert len(_elements(joined)) == sum(len(_elements(source)) for source in sources)


def test_every_element_points_at_a_page_of_the_joined_file(joined):
    pages = {page.indirect_reference.idnum for page in joined.pages}
    elements = _elements(joined)
    assert elements
    for element in elements.values():
        if "/Pg" in element:
            assert element.raw_get("/Pg").idnum in pages
        for kid in element.get("/K", []):
            if isinstance(kid, IndirectObject) and "/Pg" in kid.get_object():
                assert kid.get_object().raw_get("/Pg").idnum in pages


def test_each_pages_marked_content_maps_to_its_elements(joined):
    tree = _parent_tree(joined)
    keys = [key for key, _value in tree]
    assert len(set(keys)) == len(keys)
    assert joined.root_object["/StructTreeRoot"]["/ParentTreeNextKey"] == max(keys) + 1 == 6
    entries = dict(tree)
    reached = _elements(joined)
    seen_keys = set()
    for page in joined.pages:
        key = page["/StructParents"]
        seen_keys.add(key)
        mcids = [int(m) for m in re.findall(rb"/MCID (\d+)", page.get_contents().get_data())]
        assert mcids
        parents = entries[key].get_object()
        assert len(parents) == max(mcids) + 1
        for mcid in mcids:
            reference = parents[mcid]
            element = reference.get_object()
            assert reference.idnum in reached
            assert element.raw_get("/Pg").idnum == page.indirect_reference.idnum
            assert mcid in element["/K"]
    assert seen_keys == set(keys)


def test_each_letter_is_read_in_its_language(joined):
    tree = dict(_parent_tree(joined))
    languages = []
    for page in joined.pages:
        text = _text(page)
        (language,) = [code for code, mark in LANGUAGE_MARKS.items() if mark in text]
        languages.append(language)
        leaves = [ref.get_object() for ref in tree[page["/StructParents"]].get_object()]
        assert {_language(leaf, joined) for leaf in leaves} == {language}, text[:40]
    assert languages == ["es", "en", "zh-hans", "en", "es", "zh-hans"]


def test_the_pdf_ua_identification_is_the_first_chunks(chunks, joined):
    first = PdfReader(io.BytesIO(chunks[0]))
    assert (
        joined.metadata.title
        == first.metadata.title
        == ("Activation letters · Riverside Unified School District")
    )
    xmp = joined.root_object["/Metadata"].get_data().decode()
    assert 'pdfuaid:part="1"' in xmp
    assert "Activation letters · Riverside Unified School District" in xmp
    assert joined.root_object["/ViewerPreferences"]["/DisplayDocTitle"].value is True


def test_links_keep_their_place_in_the_structure():
    """Annotations are parents of structure too: their /StructParent moves with the
    rest of their file's keys."""
    html = (
        '<html lang="en"><head><title>Links</title></head>'
        '<body><p><a href="{}">{}</a></p></body></html>'
    )
    sources = [pdf_from_html(html.format(f"https://example.org/{n}", f"Link {n}")) for n in (1, 2)]
    out = io.BytesIO()
    tagged_join([io.BytesIO(source) for source in sources], out, lang="en")
    joined = PdfReader(io.BytesIO(out.getvalue()))
    tree = dict(_parent_tree(joined))
    reached = _elements(joined)
    uris = []
    for page in joined.pages:
        (annotation,) = page["/Annots"]
        key = annotation.get_object()["/StructParent"]
        link = tree[key]
        assert link.idnum in reached and link.get_object()["/S"] == "/Link"
        objects = [
            kid.get_object().raw_get("/Obj").idnum
            for kid in link.get_object()["/K"]
            if isinstance(kid, IndirectObject) and kid.get_object().get("/Type") == "/OBJR"
        ]
        assert objects == [annotation.idnum]
        uris.append(annotation.get_object()["/A"]["/URI"])
    assert uris == ["https://example.org/1", "https://example.org/2"]
    keys = list(tree)
    assert (
        len(keys) == len(set(keys)) == joined.root_object["/StructTreeRoot"]["/ParentTreeNextKey"]
    )


def test_an_untagged_file_is_refused():
    from pypdf import PdfWriter

    blank = PdfWriter()
    blank.add_blank_page(612, 792)
    untagged = io.BytesIO()
    blank.write(untagged)
    with pytest.raises(ValueError, match="not a tagged PDF"):
        tagged_join([io.BytesIO(untagged.getvalue())], io.BytesIO(), lang="en")
