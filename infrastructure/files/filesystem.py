"""Blobs as files in a directory: the embedded default's blob store (a shared volume serves several instances).

A blob is written to a temporary file and renamed into place, so a reader never sees half of one. The work runs
in a thread: the event loop never waits for the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from pathlib import Path

from domain.files.errors import FileNotFound
from domain.files.ports import BlobStore

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class FilesystemBlobStore(BlobStore):
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise FileNotFound(f"no content for file {key}") from None

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._path(key).unlink)

    def _path(self, key: str) -> Path:
        if not _SAFE_KEY.match(key):  # keys are ids; refuse anything that could leave the directory
            raise ValueError(f"invalid blob key {key!r}")
        return self._directory / key

    def _write(self, path: Path, data: bytes) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
