"""Text the service stores. PostgreSQL's ``text`` cannot hold U+0000 (NUL), so no stored text may contain one: a
client's text with a NUL is refused before anything runs, and text from elsewhere (a model's answer) has it replaced.
"""

from __future__ import annotations

from domain.shared.errors import RuleViolation

NUL = "\x00"
REPLACEMENT = "\ufffd"


def check_storable(value: str, field: str) -> None:
    """Refuses a client's text that could not be stored."""
    if NUL in value:
        raise RuleViolation(f"{field} must not contain a NUL character (U+0000)")


def storable(value: str) -> str:
    """Text not sent by the client, made storable: each NUL becomes U+FFFD, as a lenient decoder would make it."""
    return value.replace(NUL, REPLACEMENT) if NUL in value else value
