"""``Idempotency-Key`` at the HTTP edge: the header, the request fingerprint and replayed responses.

The rules live in ``application.idempotency.guard``; this module only translates. A replay carries
``Idempotent-Replayed: true``. Any endpoint that creates something expensive (a model call) can use it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

import orjson
from fastapi import Header
from pydantic import BaseModel
from starlette.responses import Response

from domain.idempotency.model import MAX_KEY_LENGTH, StoredResponse

REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Makes retrying safe: the first request with a key runs, and a later one with the same key and the same "
            "body gets the stored response (header `Idempotent-Replayed: true`) without a second model call. "
            "The same key with a different body is 422; while the first is still running, 409. Keys are per user "
            "and kept for `SWITCHBOARD_IDEMPOTENCY_TTL_SECONDS`."
        ),
    ),
]


def fingerprint(path: str, body: BaseModel, **extra: Any) -> str:
    """A digest of what was asked: the path and the parsed body (so formatting and key order do not matter)."""
    payload = {"path": path, "body": body.model_dump(mode="json"), **extra}
    try:
        text = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson cannot write (integers beyond 64 bits, lone surrogates) but a body may hold
        text = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(text).hexdigest()


def stored_json(status: int, body: BaseModel | dict[str, Any], media_type: str = "application/json") -> StoredResponse:
    text = body.model_dump_json() if isinstance(body, BaseModel) else orjson.dumps(body).decode()
    return StoredResponse(status=status, media_type=media_type, body=text)


def as_response(stored: StoredResponse, *, replayed: bool, headers: dict[str, str] | None = None) -> Response:
    headers = {**(headers or {}), **({REPLAYED_HEADER: "true"} if replayed else {})}
    return Response(content=stored.body, status_code=stored.status, media_type=stored.media_type, headers=headers)
