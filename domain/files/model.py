"""Files: what a user uploaded (batch inputs) and what Switchboard wrote for them (batch outputs).

A file is metadata here and bytes in a blob store (``BlobStore``); the metadata's ``id`` names the blob. Its public
id is OpenAI's shape, ``file-`` and 32 hex digits.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.files.errors import FileNotFound

PUBLIC_PREFIX = "file-"
MAX_FILENAME_LENGTH = 255
# OpenAI's bounds for ``expires_after[seconds]``: one hour to thirty days.
MIN_EXPIRY_SECONDS = 3600
MAX_EXPIRY_SECONDS = 30 * 86_400


class FilePurpose(enum.StrEnum):
    BATCH = "batch"
    ASSISTANTS = "assistants"
    USER_DATA = "user_data"
    BATCH_OUTPUT = "batch_output"  # written by Switchboard, never uploaded


UPLOADABLE_PURPOSES = (FilePurpose.BATCH, FilePurpose.ASSISTANTS, FilePurpose.USER_DATA)


@dataclass(kw_only=True)
class StoredFile:
    id: uuid.UUID
    owner_id: uuid.UUID
    filename: str
    purpose: FilePurpose
    size_bytes: int
    created_at: datetime
    expires_at: datetime | None = None

    @property
    def public_id(self) -> str:
        return public_file_id(self.id)

    def is_live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


def public_file_id(file_id: uuid.UUID) -> str:
    return PUBLIC_PREFIX + file_id.hex


def parse_file_id(text: str) -> uuid.UUID:
    """The id inside a public file id; anything else is a file that does not exist (404, never 400)."""
    if text.startswith(PUBLIC_PREFIX):
        try:
            return uuid.UUID(hex=text.removeprefix(PUBLIC_PREFIX))
        except ValueError:
            pass
    raise FileNotFound(f"no such file: '{text[:100]}'")


@dataclass(frozen=True)
class FilePageCursor:
    """Where a page of files starts: after this file, in the order asked for."""

    created_at: datetime
    id: uuid.UUID
