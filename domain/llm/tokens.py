"""Token estimates for text whose real count the provider never reported (a stream cut short)."""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)
