"""Parsing documents with their libraries, and chunking by estimated tokens with overlap."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.vectors.chunking import chunk_text
from domain.vectors.errors import UnsupportedDocument
from domain.vectors.stores import ChunkingStrategy
from infrastructure.vectors.parsers import LibraryDocumentParser

pytestmark = pytest.mark.unit


def pdf_with(text: str) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica (test data, laid out by the PDF specification's rules)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("notes.txt", "\ufeffplain words\nsecond line".encode(), "plain words\nsecond line"),
        (
            "README.MD",
            b"# Title\n\nSome *emphasis* and `code`.\n\n- one\n- two",
            "Title\nSome\nemphasis\nand\ncode\n.\none\ntwo",
        ),
        (
            "page.html",
            b"<html><head><title>T</title><style>p{}</style></head><body><p>Hello <b>world</b></p>"
            b"<script>alert(1)</script><div>Bye</div></body></html>",
            "Hello\nworld\nBye",
        ),
        ("data.json", b'{"a": {"b": [1, true, null, "x"]}, "c": 2.5}', "a.b[0]: 1\na.b[1]: true\na.b[3]: x\nc: 2.5"),
        ("scan.pdf", pdf_with("Invoice ZX-81 total 42"), "Invoice ZX-81 total 42"),
    ],
)
async def test_each_type_is_parsed_by_its_library(filename: str, content: bytes, expected: str) -> None:
    assert await LibraryDocumentParser().parse(filename, content) == expected


@pytest.mark.parametrize(
    ("filename", "content", "reason"),
    [
        ("photo.jpeg", b"\xff\xd8", "'.jpeg' are not supported"),
        ("noextension", b"text", "'none' are not supported"),
        ("latin.txt", "café".encode("latin-1"), "not UTF-8"),
        ("bad.json", b"{nope", "not valid JSON"),
        ("bad.pdf", b"%PDF-1.7\nnothing else", "PDF cannot be read"),
    ],
)
async def test_what_cannot_be_parsed_is_an_unsupported_document(filename: str, content: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedDocument, match=reason):
        await LibraryDocumentParser().parse(filename, content)


def test_chunks_keep_to_their_budget_and_overlap() -> None:
    words = " ".join(f"w{i:04d}" for i in range(2000))  # 5 characters and a space each
    chunks = chunk_text(words, ChunkingStrategy.of(100, 25))

    assert all(len(c.text) <= 400 and c.token_count <= 100 for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for before, after in itertools.pairwise(chunks):
        first_word = after.text.split()[0]
        assert first_word in before.text  # the next chunk starts inside the previous one
        overlap = before.text[before.text.index(first_word) :]
        assert 60 <= len(overlap) <= 100  # about 25 tokens (100 characters), cut at a word
    assert chunks[-1].text.endswith("w1999")
    assert chunk_text("   \n ", ChunkingStrategy.auto()) == []


@given(text=st.text(min_size=0, max_size=3000), size=st.integers(100, 300), ratio=st.floats(0, 0.5))
def test_chunking_always_ends_and_covers_every_word(text: str, size: int, ratio: float) -> None:
    strategy = ChunkingStrategy.of(size, int(size * ratio))
    chunks = chunk_text(text, strategy)
    joined = " ".join(c.text for c in chunks)
    assert all(len(c.text) <= size * 4 for c in chunks)
    assert all(word in joined for word in text.split() if len(word) < size)
