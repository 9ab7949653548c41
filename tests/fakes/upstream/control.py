"""The ``/_fake/...`` control endpoints, so that a fake running as its own process (``python -m
tests.fakes.upstream``, as the benchmark runs it) can be scripted and read over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from tests.fakes.upstream.behaviours import Behaviour
from tests.fakes.upstream.transport import JSON, Exchange

if TYPE_CHECKING:
    from tests.fakes.upstream.server import FakeUpstream


async def answer(up: FakeUpstream, method: str, path: str, body: Any, ex: Exchange) -> None:
    """Push behaviours, fail a model, reset, or read the stats or the recorded requests."""
    result: Any = {"ok": True}
    status = 200
    try:
        if method == "POST" and path == "/_fake/push":
            items = body.get("behaviours", []) if isinstance(body, dict) else body
            up.push(*(Behaviour.from_dict(item) for item in items))
        elif method == "POST" and path == "/_fake/fail_model":
            kwargs = {k: v for k, v in body.items() if k not in ("model", "status")}
            up.fail_model(body["model"], int(body.get("status", 500)), **kwargs)
        elif method == "POST" and path == "/_fake/reset":
            up.reset()
        elif method == "GET" and path == "/_fake/stats":
            result = _stats(up)
        elif method == "GET" and path == "/_fake/requests":
            result = [r.to_dict() for r in up.requests]
        else:
            status, result = 404, {"ok": False, "error": "unknown control endpoint"}
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        status, result = 400, {"ok": False, "error": str(exc)}
    await ex.respond(status, orjson.dumps(result), [JSON])


def _stats(up: FakeUpstream) -> dict[str, Any]:
    return {
        "requests": up.request_count,
        "completions_served": up.completions_served,
        "embeddings_served": up.embeddings_served,
        "served_by_path": dict(up.served),
        "pending": len(up.pending),
    }
