"""Errors of the vectors context: the index, vector stores and their files."""

from __future__ import annotations

from domain.shared.errors import NotFound, RuleViolation, ServiceUnavailable


class VectorIndexUnavailable(ServiceUnavailable):
    """The database cannot hold a vector index (PostgreSQL without the pgvector extension): vector stores cannot
    be used on this deployment until it can. A server-side condition, never the client's fault."""

    code = "vector_index_unavailable"
    title = "Vector search unavailable"


class VectorStoreNotFound(NotFound):
    code = "vector_store_not_found"
    title = "Vector store not found"


class VectorStoreFileNotFound(NotFound):
    code = "vector_store_file_not_found"
    title = "Vector store file not found"


class UnsupportedDocument(RuleViolation):
    """A file no parser reads (its type, or bytes that are not what its name says): the file fails to ingest."""

    code = "unsupported_file"
    title = "Unsupported file"


def vector_store_not_found(public_id: str) -> VectorStoreNotFound:
    return VectorStoreNotFound(f"No vector store found with id '{public_id[:100]}'.")


def vector_store_file_not_found(public_id: str) -> VectorStoreFileNotFound:
    return VectorStoreFileNotFound(f"No file found with id '{public_id[:100]}' in this vector store.")
