"""Errors of the vectors context."""

from __future__ import annotations

from domain.shared.errors import ServiceUnavailable


class VectorIndexUnavailable(ServiceUnavailable):
    """The database cannot hold a vector index (PostgreSQL without the pgvector extension): vector stores cannot
    be used on this deployment until it can. A server-side condition, never the client's fault."""

    code = "vector_index_unavailable"
    title = "Vector search unavailable"
