"""File searches and citations as the JSON columns keep them (``responses.file_search``, ``messages.citations``)."""

from __future__ import annotations

import uuid
from typing import Any

from domain.vectors.citations import Citation, FileSearch, Source


def file_search_json(search: FileSearch | None) -> dict[str, Any] | None:
    if search is None:
        return None
    return {
        "queries": list(search.queries),
        "results_shown": search.results_shown,
        "sources": [
            {
                "store_id": s.store_id.hex,
                "file_id": s.file_id.hex,
                "filename": s.filename,
                "position": s.position,
                "score": s.score,
                "text": s.text,
                "attributes": dict(s.attributes),
            }
            for s in search.sources
        ],
    }


def file_search_from_json(value: dict[str, Any] | None) -> FileSearch | None:
    if value is None:
        return None
    sources = tuple(
        Source(
            store_id=uuid.UUID(hex=s["store_id"]),
            file_id=uuid.UUID(hex=s["file_id"]),
            filename=s["filename"],
            position=s["position"],
            score=s["score"],
            text=s["text"],
            attributes=s["attributes"],
        )
        for s in value["sources"]
    )
    return FileSearch(queries=tuple(value["queries"]), sources=sources, results_shown=value["results_shown"])


def citations_json(citations: tuple[Citation, ...]) -> list[dict[str, Any]] | None:
    if not citations:
        return None
    return [
        {"file_id": c.file_id.hex, "filename": c.filename, "position": c.position, "score": c.score, "index": c.index}
        for c in citations
    ]


def citations_from_json(values: list[dict[str, Any]] | None) -> tuple[Citation, ...]:
    return tuple(
        Citation(
            file_id=uuid.UUID(hex=v["file_id"]),
            filename=v["filename"],
            position=v["position"],
            score=v["score"],
            index=v["index"],
        )
        for v in values or []
    )
