"""Files in OpenAI's response shapes (pure functions): the file object, a page of them, a deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from application.files.list_files import FilePage
from domain.files.model import StoredFile


def _seconds(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def file_body(file: StoredFile) -> dict[str, Any]:
    return {
        "id": file.public_id,
        "object": "file",
        "bytes": file.size_bytes,
        "created_at": _seconds(file.created_at),
        "expires_at": _seconds(file.expires_at),
        "filename": file.filename,
        "purpose": file.purpose.value,
        "status": "processed",
        "status_details": None,
    }


def file_list_body(page: FilePage) -> dict[str, Any]:
    data = [file_body(f) for f in page.files]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }


def file_deleted_body(file: StoredFile) -> dict[str, Any]:
    return {"id": file.public_id, "object": "file", "deleted": True}
