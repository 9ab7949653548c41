"""Token counts as the providers report them, checked: a count that is not a non-negative integer is a bad answer
(``ValueError``, which the adapters turn into ``UpstreamBadResponse``), never a price computed from garbage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def token_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("token counts are not non-negative integers")
    return value


def count_of(usage: Mapping[str, Any], key: str) -> int:
    """``usage[key]`` checked, 0 when the provider left it out."""
    return token_count(usage.get(key, 0))
