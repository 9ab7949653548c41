"""Hybrid ranking shared by every vector index adapter: reciprocal rank fusion of a vector half and a text half.

Each adapter finds two candidate lists among the chunks a query may see (the owner's stores, the filter):

- the vector half: the ``candidates(limit)`` chunks nearest to the query's embedding by cosine distance (chunks of
  another dimension are not comparable and never in it);
- the text half: up to ``candidates(limit)`` chunks matching at least one of the query's words (English stop
  words aside), best first by the adapter's full-text score (PostgreSQL ``ts_rank``, SQLite FTS5 ``bm25``, a
  word count in memory). PostgreSQL ranks at most ``4 * candidates(limit)`` of each word's matches (all of a rare
  word's; a sample of a common word's), so the work is bounded.

A chunk's score is ``(K + 1) / 2 * (1 / (K + r_v) + 1 / (K + r_t))`` with ``K = 60`` and ``r_v`` / ``r_t`` its
1-based ranks in the two lists (a term is 0 when the chunk is not in that list). So scores lie in (0, 1], higher is
better: 1.0 is the first chunk of both lists, 0.5 the first of one list only. Ties go to the better vector rank,
then the better text rank, then the chunk id. The fusion runs here, in Python, for every adapter, so equal ranks
give bit-identical scores everywhere.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

RRF_K = 60
MIN_CANDIDATES = 50

_WORD = re.compile(r"\w+")


def candidates(limit: int) -> int:
    """How many chunks each half proposes for a search returning ``limit`` chunks."""
    return max(2 * limit, MIN_CANDIDATES)


def all_words(text: str) -> list[str]:
    """Every lower-cased word of a text, repeats included (``\\w+``: letters, digits, underscore)."""
    return [word.lower() for word in _WORD.findall(text)]


# PostgreSQL's ``english`` stop words (Snowball's list): the in-memory and SQLite text halves drop them from a
# query as PostgreSQL's does, so "what is the ..." does not match every chunk there.
_STOP_WORDS = """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
    herself it its itself they them their theirs themselves what which who whom this that these those am is are was
    were be been being have has had having do does did doing a an the and but if or because as until while of at by
    for with about against between into through during before after above below to from up down in out on off over
    under again further then once here there when where why how all any both each few more most other some such no
    nor not only own same so than too very s t can will just don should now"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


def query_words(text: str) -> list[str]:
    """The distinct lower-cased words of a query, in order, without stop words (what the text halves look for)."""
    return [word for word in dict.fromkeys(all_words(text)) if word not in STOP_WORDS]


@dataclass(frozen=True)
class Fused:
    chunk_id: uuid.UUID
    score: float
    vector_rank: int | None
    text_rank: int | None


def _term(rank: int | None) -> float:
    return 0.0 if rank is None else 1.0 / (RRF_K + rank)


def fuse(
    vector_ids: Sequence[uuid.UUID], text_ids: Sequence[uuid.UUID], *, threshold: float, limit: int
) -> list[Fused]:
    """The best ``limit`` chunks of the two ranked lists (best first), scored as the module says, keeping those
    with a score of at least ``threshold``."""
    vector_ranks = {chunk_id: rank for rank, chunk_id in enumerate(vector_ids, start=1)}
    text_ranks = {chunk_id: rank for rank, chunk_id in enumerate(text_ids, start=1)}
    fused = []
    for chunk_id in vector_ranks.keys() | text_ranks.keys():
        v, t = vector_ranks.get(chunk_id), text_ranks.get(chunk_id)
        score = min(1.0, (RRF_K + 1) / 2 * (_term(v) + _term(t)))
        if score >= threshold:
            fused.append(Fused(chunk_id, score, v, t))
    missing = len(vector_ranks) + len(text_ranks) + 1
    fused.sort(key=lambda f: (-f.score, f.vector_rank or missing, f.text_rank or missing, f.chunk_id))
    return fused[: max(limit, 0)]
