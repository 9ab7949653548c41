"""Opaque cursors for newest-first pagination."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from domain.chat.model import PageCursor
from domain.shared.errors import RuleViolation

T = TypeVar("T")
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def check_page_size(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise RuleViolation(f"limit must be between 1 and {MAX_PAGE_SIZE}")


def encode_cursor(cursor: PageCursor) -> str:
    raw = f"{cursor.created_at.isoformat()}|{cursor.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> PageCursor:
    try:
        padded = token + "=" * (-len(token) % 4)
        created, _, ident = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        at = datetime.fromisoformat(created)
        if at.tzinfo is None:
            raise ValueError("naive timestamp")
        return PageCursor(created_at=at, id=uuid.UUID(ident))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise RuleViolation("cursor is not valid") from exc
