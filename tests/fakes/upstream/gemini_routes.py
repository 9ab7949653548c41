"""Gemini's endpoints, ``POST /v1beta/models/{model}:{method}``: ``generateContent``, ``streamGenerateContent`` (SSE
only, with ``alt=sse``) and ``batchEmbedContents``, the key in ``x-goog-api-key``. Completions go through the shared
completion handler with the Gemini wire format; the model and the stream flag come from the path."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson

from tests.fakes.upstream import faults, gemini_wire, handlers
from tests.fakes.upstream.behaviours import error
from tests.fakes.upstream.transport import JSON, Exchange


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
    model, _, operation = path.removeprefix(gemini_wire.PREFIX).partition(":")
    if method != "POST" or not model:
        return await handlers.send_error(up, ex, "gemini", error(404, message=f"Invalid URL ({method} {path})"), "")
    if operation == "batchEmbedContents":
        return await _embed(up, model, headers, body, bad_json, ex)
    streamed = operation == "streamGenerateContent"
    if operation != "generateContent" and not streamed:
        return await handlers.send_error(up, ex, "gemini", error(404, message=f"Unknown method {operation}"), model)
    if streamed and parse_qs(query).get("alt") != ["sse"]:
        return await handlers.send_error(up, ex, "gemini", error(400, message="this fake streams only alt=sse"), model)
    if isinstance(body, dict):
        body = {**body, "_model": model, "_stream": streamed}
    return await handlers.completion(up, "gemini", headers, body, bad_json, ex)


async def list_models(up: handlers.Upstream, headers: dict[str, str], ex: Exchange) -> None:
    """``GET /v1beta/models``: the model list (what a key check asks for)."""
    problem = handlers.check_auth(up, "gemini", headers)
    if problem is not None:
        return await handlers.send_error(up, ex, "gemini", problem, "")
    models = [{"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash"}]
    await ex.respond(200, orjson.dumps({"models": models}), [JSON])
    return None


async def _embed(
    up: handlers.Upstream, model: str, headers: dict[str, str], body: Any, bad_json: bool, ex: Exchange
) -> None:
    problem = handlers.check_auth(up, "gemini", headers)
    if problem is None and (bad_json or not isinstance(body, dict) or not isinstance(body.get("requests"), list)):
        problem = error(400, message="* BatchEmbedContentsRequest.requests: requests is not specified")
    if problem is not None:
        return await handlers.send_error(up, ex, "gemini", problem, model)
    b = up.next_behaviour()
    if b.kind in ("error", "stream_error"):
        return await handlers.send_error(up, ex, "gemini", b, model)
    if b.kind in faults.INSTEAD_OF_ANSWER:
        return await faults.instead_of_answer(ex, b)
    payload = gemini_wire.embed_payload(body)
    await ex.respond(200, orjson.dumps(payload), [JSON])
    up.count_served(gemini_wire.EMBED_PATH)
    return None
