"""OpenAI's embeddings endpoint: deterministic unit vectors, as floats or base64 float32."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from functools import lru_cache
from typing import Any, Final

import orjson

from tests.fakes.upstream import openai_errors
from tests.fakes.upstream.answers import count_tokens
from tests.fakes.upstream.behaviours import Behaviour

SERVED_PATH: Final = "/v1/embeddings"


def validate(body: Any, bad_json: bool) -> Behaviour | None:
    if bad_json or not isinstance(body, dict):
        return openai_errors.bad_json()
    if not isinstance(body.get("model"), str):
        return openai_errors.no_model()
    if "input" not in body:
        return openai_errors.missing_parameter("input")
    return None


def payload(body: dict[str, Any], model: str) -> dict[str, Any]:
    """One vector per input (a string, or a list of token ids), ``dimensions`` long."""
    dims = body.get("dimensions")
    if not isinstance(dims, int) or dims < 1:
        dims = 3072 if "large" in model else 1536
    b64 = body.get("encoding_format") == "base64"
    data = []
    tokens = 0
    for index, item in enumerate(_inputs(body["input"])):
        key = item if isinstance(item, str) else orjson.dumps(item).decode()
        tokens += count_tokens(item) if isinstance(item, str) else len(item) if isinstance(item, list) else 1
        vector: Any = _embedding_b64(key, dims) if b64 else _embedding(key, dims)
        data.append({"object": "embedding", "index": index, "embedding": vector})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _inputs(raw_input: Any) -> list[Any]:
    """A string or a list of token ids is one input; any other list is a list of inputs."""
    if isinstance(raw_input, str) or (
        isinstance(raw_input, list) and raw_input and all(isinstance(t, int) for t in raw_input)
    ):
        return [raw_input]
    if isinstance(raw_input, list):
        return raw_input
    return [str(raw_input)]


def vector(text: str, dims: int) -> tuple[float, ...]:
    """The deterministic unit vector of ``text`` (what every wire format's embeddings return)."""
    return _embedding(text, dims)


@lru_cache(maxsize=4096)
def _embedding(key: str, dims: int) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(f"{dims}:{key}".encode()).digest()[:8], "big")
    rng = random.Random(seed)
    vec = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    # Round-trip through float32 so that the float and base64 encodings agree exactly.
    packed = struct.pack(f"<{dims}f", *(v / norm for v in vec))
    return struct.unpack(f"<{dims}f", packed)


@lru_cache(maxsize=4096)
def _embedding_b64(key: str, dims: int) -> str:
    vec = _embedding(key, dims)
    return base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
