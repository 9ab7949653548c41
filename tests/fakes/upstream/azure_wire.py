"""Azure OpenAI's paths: ``/openai/deployments/{deployment}/chat/completions`` and ``.../embeddings``, each with an
``api-version`` query parameter and the key in an ``api-key`` header (or an Entra ID bearer token). The bodies are
OpenAI's (``openai_wire``); the deployment stands in for a model the body leaves out. A prompt refused by the
content filter is scripted with :func:`content_filtered` (Azure's 400 ``content_filter``)."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qs

import orjson

from tests.fakes.upstream import handlers
from tests.fakes.upstream.behaviours import Behaviour, error
from tests.fakes.upstream.transport import JSON, Exchange

PREFIX: Final = "/openai/deployments/"
FILTERED_MESSAGE: Final = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please "
    "modify your prompt and retry."
)


def content_filtered() -> Behaviour:
    """Azure's content filter refusing the prompt: a 400 with code ``content_filter``."""
    return error(400, code="content_filter", message=FILTERED_MESSAGE, param="prompt")


def _as_bearer(headers: dict[str, str]) -> dict[str, str]:
    """The ``api-key`` header as the bearer the OpenAI handlers check (a bearer token passes as it is)."""
    key = headers.get("api-key")
    return {**headers, "authorization": f"Bearer {key}"} if key else headers


async def _not_found(ex: Exchange) -> None:
    payload = {"error": {"code": "404", "message": "Resource not found"}}
    await ex.respond(404, orjson.dumps(payload), [JSON])


async def route(
    up: handlers.Upstream,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: Any,
    bad_json: bool,
    ex: Exchange,
) -> None:
    """One request under ``/openai/deployments/``: chat completions or embeddings of the deployment in the path."""
    deployment, _, operation = path.removeprefix(PREFIX).partition("/")
    if method != "POST" or not deployment or operation not in ("chat/completions", "embeddings"):
        return await _not_found(ex)
    if not parse_qs(query).get("api-version"):
        payload = {"error": {"code": "404", "message": "Resource not found (no api-version)"}}
        return await ex.respond(404, orjson.dumps(payload), [JSON])
    if isinstance(body, dict) and not body.get("model"):
        body = {**body, "model": deployment}
    headers = _as_bearer(headers)
    if operation == "embeddings":
        return await handlers.embed(up, headers, body, bad_json, ex)
    return await handlers.completion(up, "openai", headers, body, bad_json, ex)
