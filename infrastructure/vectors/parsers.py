"""Documents to text with well-kept parser libraries, chosen by the file's extension, off the event loop.

- plain text (``.txt``, ``.text``, ``.log``, ``.csv``, ``.tsv``): UTF-8 (a byte-order mark is dropped);
- Markdown (``.md``, ``.markdown``): markdown-it-py (CommonMark) to HTML, then its text as for HTML;
- HTML (``.html``, ``.htm``): Beautiful Soup on Python's HTML parser, without scripts, styles and templates,
  one line per block;
- JSON (``.json``): orjson, one ``path: value`` line per scalar (keys and values both searchable);
- PDF (``.pdf``): pypdf's text extraction, page by page.

Anything else, or bytes its parser cannot read, is ``UnsupportedDocument``: the file fails with ``unsupported_file``.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

import orjson

from domain.vectors.errors import UnsupportedDocument
from domain.vectors.store_ports import DocumentParser

HIDDEN_HTML = ("script", "style", "template", "noscript", "head")


def parse_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedDocument("the file is not UTF-8 text") from None


def parse_html(data: bytes | str) -> str:
    from bs4 import BeautifulSoup  # the parsers are imported on first use: the server need not hold them idle

    soup = BeautifulSoup(data, "html.parser")
    for hidden in soup(HIDDEN_HTML):
        hidden.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def parse_markdown(data: bytes) -> str:
    from markdown_it import MarkdownIt

    return parse_html(MarkdownIt("commonmark").render(parse_text(data)))


def parse_json(data: bytes) -> str:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UnsupportedDocument("the file is not valid JSON") from None
    return "\n".join(f"{path}: {value}" if path else str(value) for path, value in _scalars(document, ""))


def _scalars(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _scalars(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _scalars(value, f"{path}[{i}]")
    elif node is not None:
        yield path, node if isinstance(node, str) else orjson.dumps(node).decode()


def parse_pdf(data: bytes) -> str:
    from pypdf import PdfReader  # ~19 MB of memory: imported by the first PDF
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnsupportedDocument(f"the PDF cannot be read: {type(exc).__name__}") from None
    return "\n\n".join(p.strip() for p in pages if p.strip())


PARSERS: dict[str, Callable[[bytes], str]] = {
    ".txt": parse_text,
    ".text": parse_text,
    ".log": parse_text,
    ".csv": parse_text,
    ".tsv": parse_text,
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".html": parse_html,
    ".htm": parse_html,
    ".json": parse_json,
    ".pdf": parse_pdf,
}


class LibraryDocumentParser(DocumentParser):
    async def parse(self, filename: str, data: bytes) -> str:
        suffix = PurePosixPath(filename.lower()).suffix
        parser = PARSERS.get(suffix)
        if parser is None:
            known = ", ".join(sorted(PARSERS))
            raise UnsupportedDocument(f"files of type '{suffix[:20] or 'none'}' are not supported ({known} are)")
        text = await asyncio.to_thread(parser, data)
        return text.replace("\x00", "")  # no store keeps NUL in text
