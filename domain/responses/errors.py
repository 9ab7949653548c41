"""Errors of the responses context."""

from __future__ import annotations

from domain.shared.errors import NotFound


class ResponseNotFound(NotFound):
    code = "response_not_found"
    title = "Response not found"


def response_not_found(public_id: str) -> ResponseNotFound:
    return ResponseNotFound(f"No response found with id '{public_id}'.")
