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
    """A list held as a set of case-folded entries: one hash lookup per check."""

    def __init__(self, passwords: Iterable[str]) -> None:
        self._passwords = frozenset(_fold(p) for p in passwords if p.strip())

    def __len__(self) -> int:
        return len(self._passwords)

    def contains(self, password: str) -> bool:
        return _fold(password) in self._passwords

    @classmethod
    def from_file(cls, path: Path = BUNDLED_LIST) -> SetCommonPasswords:
        """One password a line, gzip-compressed when the name ends in ``.gz``."""
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return cls(raw.decode("utf-8", errors="replace").splitlines())


def _fold(password: str) -> str:
    return password.strip().casefold()
