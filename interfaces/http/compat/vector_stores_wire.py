"""Vector stores in OpenAI's response shapes (pure functions): stores, their files, pages, deletions, search."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from application.vectors.access import StoreView
from application.vectors.file_batches import BatchView
from application.vectors.search_vector_stores import SearchResults
from domain.files.model import public_file_id
from domain.vectors.model import Chunk
from domain.vectors.stores import EXPIRY_ANCHOR, FileCounts, VectorStoreFile, public_store_id


def _seconds(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def _counts(counts: FileCounts) -> dict[str, int]:
    return {
        "in_progress": counts.in_progress,
        "completed": counts.completed,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
        "total": counts.total,
    }


def store_body(shown: StoreView) -> dict[str, Any]:
    store = shown.store
    days = store.expires_after_days
    return {
        "id": store.public_id,
        "object": "vector_store",
        "created_at": _seconds(store.created_at),
        "name": store.name,
        "description": store.description,
        "usage_bytes": shown.usage_bytes,
        "file_counts": _counts(shown.counts),
        "status": shown.status.value,
        "expires_after": None if days is None else {"anchor": EXPIRY_ANCHOR, "days": days},
        "expires_at": _seconds(store.expires_at),
        "last_active_at": _seconds(store.last_active_at),
        "metadata": dict(store.metadata),
        "embedding_model": store.embedding_model,
    }


def batch_body(shown: BatchView) -> dict[str, Any]:
    batch = shown.batch
    return {
        "id": batch.public_id,
        "object": "vector_store.files_batch",
        "created_at": _seconds(batch.created_at),
        "vector_store_id": public_store_id(batch.store_id),
        "status": shown.status.value,
        "file_counts": _counts(shown.counts),
    }


def store_file_body(file: VectorStoreFile) -> dict[str, Any]:
    error = None
    if file.error_code is not None:
        error = {"code": file.error_code.value, "message": file.error_message or ""}
    return {
        "id": public_file_id(file.file_id),
        "object": "vector_store.file",
        "usage_bytes": file.usage_bytes,
        "created_at": _seconds(file.created_at),
        "vector_store_id": public_store_id(file.store_id),
        "status": file.status.value,
        "last_error": error,
        "chunking_strategy": {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": file.chunking.max_chunk_size_tokens,
                "chunk_overlap_tokens": file.chunking.chunk_overlap_tokens,
            },
        },
        "attributes": dict(file.attributes),
    }


def list_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def deleted_body(public_id: str, kind: str) -> dict[str, Any]:
    return {"id": public_id, "object": f"{kind}.deleted", "deleted": True}


def content_body(file: VectorStoreFile, chunks: Sequence[Chunk]) -> dict[str, Any]:
    return {
        "object": "vector_store.file_content.page",
        "file_id": public_file_id(file.file_id),
        "filename": file.filename,
        "attributes": dict(file.attributes),
        "data": [{"type": "text", "text": c.text} for c in chunks],
        "has_more": False,
        "next_page": None,
    }


def search_body(results: SearchResults, queries: Sequence[str]) -> dict[str, Any]:
    return {
        "object": "vector_store.search_results.page",
        "search_query": list(queries),
        "data": [
            {
                "file_id": p.public_file_id,
                "filename": p.filename,
                "score": p.score,
                "attributes": dict(p.attributes),
                "content": [{"type": "text", "text": p.text}],
            }
            for p in results.passages
        ],
        "has_more": False,
        "next_page": None,
    }
