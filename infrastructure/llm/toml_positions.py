"""Line numbers of TOML tables and keys, which ``tomllib`` does not report, for error messages that point somewhere.

A light line scanner, not a parser: it recognises ``[table]`` and ``[[array.of.tables]]`` headers and ``key = ...``
lines (dotted and quoted keys included, each decoded by ``tomllib`` itself) and skips multi-line strings. Good
enough to point at the line of a mistake in a file that ``tomllib`` has already accepted.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_ARRAY_HEADER = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]\s*(?:#.*)?$")
_HEADER = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]\s*(?:#.*)?$")
_ASSIGNMENT = re.compile(rf"^\s*({_DOTTED})\s*=")

Path = tuple[str | int, ...]


def _key_path(dotted: str) -> tuple[str, ...]:
    """``a."b.c".d`` -> ``("a", "b.c", "d")``, decoded the way TOML decodes it."""
    node: Any = tomllib.loads(f"{dotted} = 0")
    path: list[str] = []
    while isinstance(node, dict):
        (key, node), *_ = node.items()
        path.append(key)
    return tuple(path)


class TomlPositions:
    def __init__(self, text: str) -> None:
        self._lines: dict[Path, int] = {}
        array_counts: dict[Path, int] = {}
        table: Path = ()
        in_string: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            if match := _ARRAY_HEADER.match(line):
                array = _key_path(match.group(1))
                index = array_counts.get(array, 0)
                array_counts[array] = index + 1
                table = (*array, index)
                self._lines.setdefault(array, number)
                self._lines.setdefault(table, number)
            elif match := _HEADER.match(line):
                table = _key_path(match.group(1))
                self._lines.setdefault(table, number)
            elif match := _ASSIGNMENT.match(line):
                self._lines.setdefault((*table, *_key_path(match.group(1))), number)
                for quote in ('"""', "'''"):
                    if line.count(quote) % 2 == 1:
                        in_string = quote

    def find(self, *path: str | int) -> int | None:
        """The line of exactly this table or key, if it was seen."""
        return self._lines.get(tuple(path))

    def line_of(self, *path: str | int) -> int:
        """The line of this table or key, else of its nearest enclosing table that has a line, else 1."""
        for end in range(len(path), 0, -1):
            line = self._lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1
