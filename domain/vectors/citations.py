"""File search's results as a model call is given them, and the citations an answer makes of them.

Whichever provider answers, Switchboard searches the vector stores itself and gives the model the passages it found,
numbered ``[1]``, ``[2]``... in a system message that asks it to cite them by number. ``cite`` turns the answer's
``[n]`` markers into citations (the marker's character index in the answer, the passage's file and chunk); an answer
that cites no number (a model that ignores the request, or the offline ``local`` model) cites each file it was
given once, at the end of its text, best passage first: the client always learns where the grounding came from.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from domain.llm.model import ChatMessage, ChatRole
from domain.vectors.model import AttributeValue

_MARKER = re.compile(r"\[(\d{1,3})\]")

INSTRUCTIONS = (
    "Answer using the passages below, found in the user's files by a file search, when they are relevant. "
    "Cite a passage by its number in square brackets, like [1], right after the sentence it supports. "
    "If the passages do not answer the question, say so."
)
NOTHING_FOUND = "A file search of the user's files found no passage relevant to the question."


@dataclass(frozen=True, kw_only=True)
class Source:
    """One passage given to the model: its number is its place in ``FileSearch.sources`` plus one."""

    store_id: uuid.UUID
    file_id: uuid.UUID
    filename: str
    position: int  # the chunk's 0-based place in its file
    score: float
    text: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Citation:
    """Where an answer cites a passage: ``index`` is the character offset in the answer's text."""

    file_id: uuid.UUID
    filename: str
    position: int
    score: float
    index: int


@dataclass(frozen=True, kw_only=True)
class FileSearch:
    """A search made for one model call: the queries as searched and the passages found, best first."""

    queries: tuple[str, ...]
    sources: tuple[Source, ...] = ()
    results_shown: bool = False  # the client asked to see the passages (``include: ["file_search_call.results"]``)

    def context(self) -> ChatMessage:
        """The system message that gives the model the passages."""
        if not self.sources:
            return ChatMessage(ChatRole.SYSTEM, NOTHING_FOUND)
        passages = "\n\n".join(f"[{n}] {s.filename}\n{s.text}" for n, s in enumerate(self.sources, start=1))
        return ChatMessage(ChatRole.SYSTEM, f"{INSTRUCTIONS}\n\n{passages}")

    def cite(self, text: str) -> tuple[Citation, ...]:
        return cite(text, self.sources)


def cite(text: str, sources: Sequence[Source]) -> tuple[Citation, ...]:
    """The citations ``text`` makes of ``sources`` (see the module's docstring)."""
    cited = [
        _citation(sources[int(m.group(1)) - 1], m.start())
        for m in _MARKER.finditer(text)
        if 1 <= int(m.group(1)) <= len(sources)
    ]
    if cited:
        return tuple(cited)
    best_per_file: dict[uuid.UUID, Source] = {}
    for source in sources:
        best_per_file.setdefault(source.file_id, source)
    return tuple(_citation(source, len(text)) for source in best_per_file.values())


def _citation(source: Source, index: int) -> Citation:
    return Citation(
        file_id=source.file_id, filename=source.filename, position=source.position, score=source.score, index=index
    )


def with_context(messages: tuple[ChatMessage, ...], search: FileSearch) -> tuple[ChatMessage, ...]:
    """The messages with the search's context just before the last user message (so a conversation's earlier
    turns keep their place, and their prompt-cache prefix)."""
    last_user = max((i for i, m in enumerate(messages) if m.role is ChatRole.USER), default=len(messages))
    return (*messages[:last_user], search.context(), *messages[last_user:])


def search_query(messages: Sequence[ChatMessage]) -> str:
    """What a file search looks for: the newest user message's text ("" when there is none)."""
    return next((m.content.strip() for m in reversed(messages) if m.role is ChatRole.USER), "")
