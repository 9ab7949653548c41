"""Cutting a document's text into overlapping chunks of a token budget.

Tokens are counted with the project's estimator (``domain.llm.tokens``: four characters a token, the figure the
meter uses when a provider reports no count), not a model's own tokenizer: a store may use any embedding model of
the catalog, of any provider, and no tokenizer file has to be downloaded. A chunk holds at most
``max_chunk_size_tokens * 4`` characters, cut at whitespace where there is any in its last fifth, and the next
chunk starts ``chunk_overlap_tokens * 4`` characters before the previous one ended (moved forward to a word start).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.llm.tokens import CHARS_PER_TOKEN, estimate_tokens
from domain.vectors.stores import ChunkingStrategy


@dataclass(frozen=True)
class TextChunk:
    position: int
    text: str
    token_count: int


def chunk_text(text: str, strategy: ChunkingStrategy) -> list[TextChunk]:
    size = strategy.max_chunk_size_tokens * CHARS_PER_TOKEN
    overlap = strategy.chunk_overlap_tokens * CHARS_PER_TOKEN
    chunks: list[TextChunk] = []
    start, length = _skip_space(text, 0), len(text)
    while start < length:
        end = min(start + size, length)
        if end < length:
            end = _break_before(text, start, end, size)
        piece = text[start:end].strip()
        if piece:
            chunks.append(TextChunk(len(chunks), piece, estimate_tokens(piece)))
        if end >= length:
            break
        start = _skip_space(text, _word_start(text, max(end - overlap, start + 1), end))
    return chunks


def _break_before(text: str, start: int, end: int, size: int) -> int:
    """The last whitespace in the chunk's last fifth, else the hard cut."""
    floor = start + size * 4 // 5
    cut = max(text.rfind(" ", floor, end), text.rfind("\n", floor, end))
    return cut if cut > start else end


def _word_start(text: str, at: int, limit: int) -> int:
    """``at`` moved forward to the start of a word (never past ``limit``)."""
    while at < limit and not text[at - 1].isspace():
        at += 1
    return at


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at
