"""``file_search`` on ``/v1/chat/completions`` and ``/v1/messages``, Switchboard's extension: the request is grounded
by the retrieval use case (``application.vectors.file_search``) before the usual model call, and the answer carries
a ``file_search`` field: the queries, the passages the model was given, and the citations its text makes of them
(on a stream: on the finishing chunk, or on Anthropic's ``message_delta``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from application.vectors.file_search import FileSearchTool
from domain.auth.model import Principal
from domain.files.model import public_file_id
from domain.llm.model import Completion, CompletionRequest
from domain.vectors.citations import FileSearch
from interfaces.http.compat.auth import container_of
from interfaces.http.context import request_id_var

Tail = Callable[[Completion], dict[str, Any]]
"""The extension fields an answer's last event (or whole body) gets, from the answer."""


async def ground(
    request: Request, principal: Principal, completion: CompletionRequest, tool: FileSearchTool | None
) -> tuple[CompletionRequest, Tail | None]:
    """The request with the passages in it and the fields its answer gets; as it was without a tool."""
    if tool is None:
        return completion, None
    retrieval = container_of(request).file_search_retrieval()
    grounded = await retrieval.ground(completion, tool, principal=principal, request_id=request_id_var.get())
    search = grounded.search
    return grounded.request, lambda answer: file_search_body(search, answer.content)


def file_search_body(search: FileSearch, text: str) -> dict[str, Any]:
    return {
        "file_search": {
            "queries": list(search.queries),
            "results": [
                {
                    "file_id": public_file_id(s.file_id),
                    "filename": s.filename,
                    "position": s.position,
                    "score": s.score,
                    "text": s.text,
                    "attributes": dict(s.attributes),
                }
                for s in search.sources
            ],
            "citations": [
                {
                    "type": "file_citation",
                    "file_id": public_file_id(c.file_id),
                    "filename": c.filename,
                    "index": c.index,
                    "position": c.position,
                    "score": c.score,
                }
                for c in search.cite(text)
            ],
        }
    }
