"""Joining tagged PDFs into one that is still tagged.

pypdf's ``PdfWriter.append`` copies pages but not the logical structure a screen
reader follows. ``tagged_join`` copies it too: each source's structure elements go
under one /StructTreeRoot, their page references point at the copied pages (pypdf
remembers what it copied from each reader, so a clone reuses those pages rather than
copying them again), and each source's /ParentTree keys, with the pages'
/StructParents and the annotations' /StructParent that point at them, move past the
keys of the sources before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO, cast

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    PdfObject,
    TextStringObject,
)


def tagged_join(sources: Iterable[BinaryIO | Path], out: BinaryIO | Path, *, lang: str) -> int:
    """Write the pages of ``sources`` in order to ``out`` as one tagged PDF whose
    language is ``lang``; the PDF/UA identification (XMP metadata, title, viewer
    preferences) is the first source's. Returns the number of pages.

    A source in another language than ``lang`` keeps its own on its top-level
    structure elements. Every source must be tagged. Each is read completely before
    the next is taken, so ``sources`` may open and close its files one by one."""
    writer = PdfWriter()
    kids = ArrayObject()
    nums: list[tuple[int, PdfObject]] = []
    role_map = DictionaryObject()
    class_map = DictionaryObject()
    root = DictionaryObject({NameObject("/Type"): NameObject("/StructTreeRoot")})
    root_reference = writer._add_object(root)
    next_key = 0
    for index, source in enumerate(sources):
        reader = PdfReader(source)
        catalog = reader.root_object
        if "/StructTreeRoot" not in catalog:
            raise ValueError(f"source {index} is not a tagged PDF")
        tree = cast(DictionaryObject, catalog["/StructTreeRoot"].get_object())
        first_page = len(writer.pages)
        writer.append(reader)
        if index == 0:
            _identification_copy(reader, writer)

        source_lang = catalog.get("/Lang")
        for kid in _as_list(tree.get("/K")):
            element = cast(DictionaryObject, kid.get_object())
            if source_lang and source_lang != lang and "/Lang" not in element:
                element[NameObject("/Lang")] = source_lang
            # /P of this level only (the 1) pointed at the source's root.
            copy = kid.clone(writer, ignore_fields=[1, "/P"])
            cast(DictionaryObject, copy.get_object())[NameObject("/P")] = root_reference
            kids.append(copy)

        entries = list(_number_tree(tree["/ParentTree"])) if "/ParentTree" in tree else []
        nums += [(key + next_key, value.clone(writer)) for key, value in entries]
        for offset, page in enumerate(reader.pages):
            _page_keys_shift(page, writer.pages[first_page + offset], next_key)
        for name, mapping in (("/RoleMap", role_map), ("/ClassMap", class_map)):
            for key, value in cast(DictionaryObject, tree.get(name, DictionaryObject())).items():
                mapping.setdefault(NameObject(key), value.clone(writer))
        next_key += int(
            tree.get("/ParentTreeNextKey", max((key for key, _ in entries), default=-1) + 1)
        )

    root[NameObject("/K")] = kids
    root[NameObject("/ParentTree")] = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Nums"): ArrayObject(
                    item
                    for key, value in sorted(nums, key=itemgetter(0))
                    for item in (NumberObject(key), value)
                )
            }
        )
    )
    root[NameObject("/ParentTreeNextKey")] = NumberObject(next_key)
    if role_map:
        root[NameObject("/RoleMap")] = role_map
    if class_map:
        root[NameObject("/ClassMap")] = class_map
    catalog = writer.root_object
    catalog[NameObject("/StructTreeRoot")] = root_reference
    catalog[NameObject("/MarkInfo")] = DictionaryObject(
        {NameObject("/Marked"): BooleanObject(True)}
    )
    catalog[NameObject("/Lang")] = TextStringObject(lang)
    writer.write(out)
    return len(writer.pages)


def _page_keys_shift(page: DictionaryObject, copied: DictionaryObject, shift: int) -> None:
    """Point the copy of ``page`` and its annotations at their moved /ParentTree keys
    (pypdf's append leaves the page's /StructParents out; it copies /StructParent)."""
    if "/StructParents" in page:
        copied[NameObject("/StructParents")] = NumberObject(
            cast(int, page["/StructParents"]) + shift
        )
    for reference in _as_list(copied.get("/Annots")):
        annotation = cast(DictionaryObject, reference.get_object())
        if "/StructParent" in annotation:
            annotation[NameObject("/StructParent")] = NumberObject(
                cast(int, annotation["/StructParent"]) + shift
            )


def _identification_copy(reader: PdfReader, writer: PdfWriter) -> None:
    """What says the file is PDF/UA: the XMP metadata (pdfuaid), the title in it and
    in the document information, and that viewers show that title."""
    catalog = reader.root_object
    for name in ("/Metadata", "/ViewerPreferences"):
        if name in catalog:
            writer.root_object[NameObject(name)] = catalog.raw_get(name).clone(writer)
    writer.metadata = reader.metadata


def _as_list(value: PdfObject | None) -> list[PdfObject]:
    if value is None:
        return []
    resolved = value.get_object()
    return list(resolved) if isinstance(resolved, ArrayObject) else [value]


def _number_tree(node: PdfObject) -> Iterator[tuple[int, PdfObject]]:
    """The (key, value) pairs of a number tree, its /Kids included."""
    node = cast(DictionaryObject, node.get_object())
    pairs = cast(ArrayObject, node.get("/Nums", ArrayObject()))
    for position in range(0, len(pairs), 2):
        yield int(pairs[position]), pairs[position + 1]
    for kid in cast(ArrayObject, node.get("/Kids", ArrayObject())):
        yield from _number_tree(kid)
