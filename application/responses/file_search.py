"""A response's ``file_search`` tool: the search runs before the model call (``application.vectors.file_search``),
the passages go to the model, and the response keeps the search (its ``file_search_call`` item, its citations)."""

from __future__ import annotations

from dataclasses import replace

from application.responses.prepare import PreparedResponse, ResponseCommand
from application.vectors.file_search import FileSearchRetrieval
from domain.shared.errors import RuleViolation


async def ground_response(
    retrieval: FileSearchRetrieval | None, prepared: PreparedResponse, command: ResponseCommand
) -> PreparedResponse:
    """``prepared`` with the file search's passages in its request, or as it was when the command has no
    ``file_search`` tool."""
    if command.file_search is None:
        return prepared
    if retrieval is None:
        raise RuleViolation("file_search: vector stores are not available on this server")
    grounded = await retrieval.ground(
        prepared.request, command.file_search, principal=command.principal, request_id=command.request_id
    )
    prepared.record.file_search = grounded.search
    return replace(prepared, request=grounded.request)
