"""Errors of the files context."""

from __future__ import annotations

from domain.shared.errors import DomainError, NotFound


class FileNotFound(NotFound):
    code = "file_not_found"
    title = "File not found"


class FileTooLarge(DomainError):
    """An upload above the configured size limit (HTTP 413)."""

    code = "file_too_large"
    title = "File too large"
