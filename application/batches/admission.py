"""Checking a batch's lines before any model call: every line must parse, have its own ``custom_id``, ask the
batch's endpoint, and name a model of the catalog with a valid request. One bad line fails the whole batch, with
``errors`` naming the lines (at most ``MAX_ERRORS_SHOWN``), as OpenAI's batches do.

Pure and CPU-bound: the use cases run it off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from application.batches.lines import LineCall, LineCodec
from domain.batches.model import MAX_CUSTOM_ID_LENGTH, MAX_ERRORS_SHOWN, BatchError
from domain.llm.errors import ModelNotFound
from domain.shared.errors import DomainError
from domain.shared.text import NUL


@dataclass(frozen=True)
class RawLine:
    """One request of a batch as the client sent it; ``number`` is 1-based. ``label`` names it in errors (``line 3``
    by default; a message batch names ``requests[2]`` and its ``custom_id``)."""

    number: int
    custom_id: Any
    url: Any
    body: Any
    method: Any = "POST"
    label: str | None = None


def read_jsonl(data: bytes) -> tuple[list[RawLine], list[BatchError]]:
    """The lines of an OpenAI batch input file (``{custom_id, method, url, body}`` per line; blank lines skipped)."""
    lines: list[RawLine] = []
    errors: list[BatchError] = []
    for number, text in enumerate(data.splitlines(), start=1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            errors.append(BatchError(code="invalid_json_line", message=f"line {number}: not valid JSON", line=number))
            continue
        if not isinstance(item, dict):
            message = f"line {number}: a JSON object {{custom_id, method, url, body}} is expected"
            errors.append(BatchError(code="invalid_json_line", message=message, line=number))
            continue
        lines.append(
            RawLine(number, item.get("custom_id"), item.get("url"), item.get("body"), item.get("method", "POST"))
        )
    return lines, errors


@dataclass(frozen=True)
class CheckedLine:
    number: int
    custom_id: str
    url: str
    body_json: str


def check_lines(
    raw: Sequence[RawLine],
    *,
    endpoint: str,
    codec: LineCodec,
    check_call: Callable[[LineCall], None],
    max_lines: int,
    earlier_errors: Iterable[BatchError] = (),
) -> tuple[list[CheckedLine], list[BatchError]]:
    """The lines ready to store, or the errors that fail the batch (then no line is kept)."""
    errors = list(earlier_errors)
    if len(raw) > max_lines:
        message = f"the batch has {len(raw)} requests, above the limit of {max_lines}"
        return [], [BatchError(code="too_many_requests", message=message, param="input_file_id")]
    if not raw and not errors:
        return [], [BatchError(code="empty_batch", message="the batch has no requests", param="input_file_id")]
    checked: list[CheckedLine] = []
    seen: set[str] = set()
    for line in raw:
        error = _check(line, endpoint, codec, check_call, seen)
        if error is not None:
            errors.append(error)
            if len(errors) >= MAX_ERRORS_SHOWN:
                break
            continue
        body = json.dumps(line.body, ensure_ascii=False, separators=(",", ":"))
        checked.append(CheckedLine(line.number, line.custom_id, line.url, body))
    errors.sort(key=lambda e: e.line or 0)
    return ([], errors[:MAX_ERRORS_SHOWN]) if errors else (checked, [])


def _check(
    line: RawLine, endpoint: str, codec: LineCodec, check_call: Callable[[LineCall], None], seen: set[str]
) -> BatchError | None:
    n = line.number

    def error(code: str, message: str, param: str | None = None) -> BatchError:
        return BatchError(code=code, message=f"{line.label or f'line {n}'}: {message}", param=param, line=n)

    if _holds_nul((line.custom_id, line.url, line.method, line.body)):  # no stored text can hold one
        return error("invalid_json_line", "the line holds a NUL character (U+0000), which no text may hold")
    custom_id = line.custom_id
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID_LENGTH:
        return error("invalid_custom_id", f"custom_id must be a string of 1 to {MAX_CUSTOM_ID_LENGTH} characters")
    if custom_id in seen:
        return error("duplicate_custom_id", f"custom_id '{custom_id[:100]}' is used by an earlier line", "custom_id")
    seen.add(custom_id)
    if line.method != "POST":
        return error("invalid_method", "method must be 'POST'", "method")
    if not isinstance(line.url, str):
        return error("invalid_url", "url must be a string", "url")
    if line.url != endpoint:
        message = f"url '{line.url[:100]}' does not match the batch's endpoint '{endpoint}' (one endpoint per batch)"
        return error("mismatched_endpoint", message, "url")
    if not isinstance(line.body, Mapping):
        return error("invalid_body", "body must be a JSON object", "body")
    try:
        check_call(codec.parse(line.body))
    except ModelNotFound as exc:
        return error("model_not_found", exc.detail, "body.model")
    except DomainError as exc:
        return error("invalid_request", exc.detail, "body")
    return None


def _holds_nul(node: Any) -> bool:
    if isinstance(node, str):
        return NUL in node
    if isinstance(node, Mapping):
        return any(_holds_nul(key) or _holds_nul(value) for key, value in node.items())
    if isinstance(node, (list, tuple)):
        return any(_holds_nul(item) for item in node)
    return False
