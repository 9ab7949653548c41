"""Client JSON (tool arguments, tool and response schemas) turned back into text to pass on."""

from __future__ import annotations

import json
from typing import Any

import orjson


def compact_json(value: Any) -> str:
    """With orjson, or with the standard library for what orjson refuses (integers beyond 64 bits, lone surrogates):
    anything a request body parsed into can be passed on, never a 500."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value, separators=(",", ":"))
