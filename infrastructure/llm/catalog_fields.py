"""Reading the values of the catalog file: each mistake a ``CatalogError`` naming the file, the line, the model and
the key (``Place.error``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infrastructure.llm.toml_positions import TomlPositions


class CatalogError(Exception):
    """The catalog file is unusable; the message names the file, the line, the model and the offending key."""


@dataclass(frozen=True)
class Place:
    """Where a value sits in the file: the tables to look in, innermost first, for error messages."""

    source: str
    positions: TomlPositions
    model: str
    tables: tuple[tuple[str | int, ...], ...]

    def error(self, message: str, key: str | None = None) -> CatalogError:
        line = self.positions.line_of(*self.tables[0])
        for table in self.tables:
            found = self.positions.find(*table, key) if key else None
            if found is not None:
                line = found
                break
        return CatalogError(f"{self.source}:{line}: model '{self.model}': {message}")


def positive_int(raw: Mapping[str, Any], key: str, default: int, where: Place, *, minimum: int = 1) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise where.error(f"{key} must be an integer of at least {minimum}", key)
    return value


def seconds(raw: Mapping[str, Any], key: str, default: float, where: Place) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 86_400:
        raise where.error(f"{key} must be a number of seconds above 0", key)
    return float(value)


def optional_str(raw: Mapping[str, Any], key: str, where: Place) -> str | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise where.error(f"{key} must be a non-empty string", key)
    return value
