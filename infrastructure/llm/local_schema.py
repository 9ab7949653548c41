"""What the local model writes for a JSON schema: a deterministic instance that validates against it.

Every property is filled, required or not (a tool's example arguments show every field, a structured answer is
complete), down to a depth past which only required ones are, so that a recursive schema ends. ``$ref`` is followed
into ``$defs`` / ``definitions``; of ``anyOf`` / ``oneOf`` the first option that is not ``null`` is taken, and
``allOf`` is merged; enums give their first value, ``const`` and a non-empty ``default`` themselves; strings honour
the common formats and lengths, numbers their bounds, arrays their ``minItems``.
"""

from __future__ import annotations

from typing import Any

FILL_DEPTH = 4  # deeper than this only required properties are filled, so a recursive schema (a tree) ends
MAX_DEPTH = 12  # and past this nothing more is nested (an object asking for itself forever cannot be satisfied)
_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}


def example_value(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A value that fits ``schema``; ``root`` is the document its ``$ref`` s point into (the schema itself)."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return "test"
    schema = _resolved(schema, root)
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if schema.get("default") not in (None, [], {}):  # an empty default would leave the field unshown
        return schema["default"]
    for combinator in ("anyOf", "oneOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if _resolved(o, root).get("type") != "null"), options[0])
            return example_value(chosen, root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged = _merge(merged, _resolved(part, root))
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return example_value(_merge(merged, rest), root, depth + 1)
    return _typed(schema, root, depth)


def _typed(schema: dict[str, Any], root: Any, depth: int) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        if not isinstance(properties, dict) or depth >= MAX_DEPTH:
            return {}
        required: list[Any] = schema["required"] if isinstance(schema.get("required"), list) else []
        names = [n for n in properties if depth < FILL_DEPTH or n in required]
        return {name: example_value(properties[name], root, depth + 1) for name in names}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        if depth >= FILL_DEPTH or schema.get("maxItems") == 0:
            count = int(schema.get("minItems", 0))
        return [example_value(schema.get("items", {}), root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    scalars: dict[object, Any] = {"boolean": True, "null": None}
    return scalars[kind] if kind in scalars else _string(schema)


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    value: float = 1 if integer else 1.5
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + 1)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - 1)
    return int(value) if integer else value


def _string(schema: dict[str, Any]) -> str:
    text = _FORMATS.get(str(schema.get("format")), "test")
    minimum, maximum = int(schema.get("minLength", 0)), schema.get("maxLength")
    if len(text) < minimum:
        text += "x" * (minimum - len(text))
    return text[: int(maximum)] if maximum is not None else text


def _resolved(schema: Any, root: Any) -> dict[str, Any]:
    """``schema`` with its local ``$ref`` followed (``#/$defs/Name``); anything else as it is."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < MAX_DEPTH:
        target: Any = root
        for part in schema["$ref"].removeprefix("#").strip("/").split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        schema, seen = _merge(target, {k: v for k, v in schema.items() if k != "$ref"}), seen + 1
    return schema if isinstance(schema, dict) else {}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **extra}
    if isinstance(base.get("properties"), dict) and isinstance(extra.get("properties"), dict):
        merged["properties"] = {**base["properties"], **extra["properties"]}
    return merged
