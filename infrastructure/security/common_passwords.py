"""The common and breached passwords new passwords are checked against, shipped with the code (no network).

``data/common-passwords.txt.gz`` is Django's list (``django/contrib/auth/common-passwords.txt.gz``, Django 5.2,
BSD licence): the 20,000 most common passwords of Royce Williams' compilation of breach corpora
(https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce), unhexed, lower-cased and deduplicated;
19,640 lines. Shorter entries are refused by the length rule anyway; they stay so that the file is the published one.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

from domain.auth.ports import CommonPasswords

BUNDLED_LIST = Path(__file__).parent / "data" / "common-passwords.txt.gz"


class SetCommonPasswords(CommonPasswords):
    """A list held as one block of newline-separated, case-folded entries (UTF-8), each looked for with its
    separators. Every server process holds it: as a ``frozenset`` of 19,640 strings it took 1.6 MB, as one block it
    takes 0.16 MB, and a look (a substring search, about 0.03 ms) happens only when a password is chosen, beside an
    argon2 hash."""

    def __init__(self, passwords: Iterable[str]) -> None:
        entries = sorted({_fold(p) for p in passwords if p.strip()})
        self._count = len(entries)
        self._block = b"\n" + b"\n".join(_utf8(entry) for entry in entries) + b"\n"

    def __len__(self) -> int:
        return self._count

    def contains(self, password: str) -> bool:
        folded = _fold(password)
        if not folded or "\n" in folded:  # no entry is empty or holds a line break: it could only match across two
            return False
        return b"\n" + _utf8(folded) + b"\n" in self._block

    @classmethod
    def from_file(cls, path: Path = BUNDLED_LIST) -> SetCommonPasswords:
        """One password a line, gzip-compressed when the name ends in ``.gz``."""
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return cls(raw.decode("utf-8", errors="replace").splitlines())


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a password from JSON may hold a lone surrogate


def _fold(password: str) -> str:
    return password.strip().casefold()
