"""The built-in offline embedder: deterministic unit vectors of a fixed size, with no key and no network.

Each text is hashed into its vector feature by feature (its lower-cased words, and the character trigrams of each
word, with a hash-chosen sign), then scaled to unit length. Texts sharing words or word pieces point the same way,
so cosine similarity means something, if far less than a trained model's. Equal texts always get equal vectors.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re

from domain.llm.model import EmbeddingRequest, Embeddings, ModelSpec, ServedBy, TokenUsage
from domain.llm.ports import EmbeddingProvider
from domain.shared.errors import UpstreamRejected
from infrastructure.llm.local import count_tokens

DEFAULT_DIMENSIONS = 256
# Above this many characters a request's hashing (about 3 µs a character) runs in a thread, not on the event loop.
OFF_LOOP_CHARACTERS = 16_384
_WORD = re.compile(r"\w+", re.UNICODE)
_TRIGRAM_WEIGHT = 0.5


def _features(text: str) -> list[tuple[str, float]]:
    features: list[tuple[str, float]] = []
    for word in _WORD.findall(text.lower()):
        features.append(("w:" + word, 1.0))
        padded = f"<{word}>"
        features.extend(("t:" + padded[i : i + 3], _TRIGRAM_WEIGHT) for i in range(len(padded) - 2))
    return features or [("x:" + text, 1.0)]  # no word at all (punctuation only): the text itself


def embed_text(text: str, dimensions: int) -> tuple[float, ...]:
    """``text``'s unit vector of ``dimensions`` components."""
    vector = [0.0] * dimensions
    for feature, weight in _features(text):
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "big")
        vector[value % dimensions] += weight if value >> 63 else -weight
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0:  # features that cancelled out exactly: any fixed unit vector will do
        return (1.0, *([0.0] * (dimensions - 1)))
    return tuple(v / norm for v in vector)


def _embed_all(texts: tuple[str, ...], dimensions: int) -> tuple[tuple[float, ...], ...]:
    return tuple(embed_text(text, dimensions) for text in texts)


class LocalEmbeddingProvider(EmbeddingProvider):
    def __init__(self, spec: ModelSpec) -> None:
        self._spec = spec
        self._dimensions = spec.dimensions or DEFAULT_DIMENSIONS
        self._served_by = ServedBy(model=spec.name, provider="local", upstream_model=spec.upstream_model)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        dimensions = request.dimensions or self._dimensions
        if dimensions > self._dimensions:
            raise UpstreamRejected(
                f"model '{self._spec.name}' makes vectors of at most {self._dimensions} dimensions",
                provider="local",
                model=self._spec.name,
            )
        if sum(len(text) for text in request.inputs) > OFF_LOOP_CHARACTERS:  # ingestion's batches: off the loop
            vectors = await asyncio.to_thread(_embed_all, request.inputs, dimensions)
        else:
            vectors = _embed_all(request.inputs, dimensions)
        usage = TokenUsage(input_tokens=sum(count_tokens(text) for text in request.inputs))
        return Embeddings(vectors=vectors, usage=usage, served_by=self._served_by)
