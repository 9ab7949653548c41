"""Reading integrity errors, so that repositories can translate them into domain errors by constraint name.

PostgreSQL (asyncpg) names the violated constraint. SQLite names only the columns of a unique violation, which
the table metadata maps back to the constraint's name; it names nothing for a foreign-key violation.
"""

from __future__ import annotations

import re

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.exc import IntegrityError

from infrastructure.db.tables import metadata

_PG_UNIQUE_VIOLATION = "23505"
_PG_FOREIGN_KEY_VIOLATION = "23503"
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<columns>.+)$")
_SQLITE_FOREIGN_KEY = "FOREIGN KEY constraint failed"


def _sqlstate(exc: IntegrityError) -> str | None:
    for source in (exc.orig, exc.orig.__cause__ if exc.orig is not None else None):
        code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def violated_unique_constraint(exc: IntegrityError) -> str | None:
    """The name of the unique constraint (or unique index) the statement broke, if that is what happened."""
    if _sqlstate(exc) == _PG_UNIQUE_VIOLATION:
        name = getattr(exc.orig.__cause__ if exc.orig is not None else None, "constraint_name", None)
        return name if isinstance(name, str) else None
    match = _SQLITE_UNIQUE.search(str(exc.orig))
    if match is None:
        return None
    qualified = [part.strip() for part in match["columns"].split(",")]
    tables = {name.partition(".")[0] for name in qualified}
    if len(tables) != 1:
        return None
    return _unique_name(tables.pop(), {name.partition(".")[2] for name in qualified})


def is_foreign_key_violation(exc: IntegrityError) -> bool:
    return _sqlstate(exc) == _PG_FOREIGN_KEY_VIOLATION or _SQLITE_FOREIGN_KEY in str(exc.orig)


def _unique_name(table_name: str, columns: set[str]) -> str | None:
    table = metadata.tables.get(table_name)
    if table is None:
        return None
    candidates: list[UniqueConstraint | Index] = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    candidates.extend(index for index in table.indexes if index.unique)
    for item in candidates:
        if {column.name for column in item.columns} == columns and isinstance(item.name, str):
            return item.name
    return None
