"""Which schema revision the code expects and which one the database is at, without loading Alembic.

The readiness check asks both on every probe; Alembic (with Mako) would add ~13 MiB to every server process for
two facts. The head is read from the revision files' ``revision``/``down_revision`` assignments (a test checks it
against Alembic's own answer) and the database's revision from Alembic's ``alembic_version`` table.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.db.paths import MIGRATIONS_DIR


def _assignments(path: Path) -> dict[str, object]:
    """The module-level ``revision`` and ``down_revision`` literals of one revision file."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and value is not None:
            found[target.id] = ast.literal_eval(value)
    return found


def expected_head(directory: Path = MIGRATIONS_DIR / "versions") -> str:
    """The one revision no other revision builds on."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted(directory.glob("*.py")):
        values = _assignments(path)
        revision = values.get("revision")
        if not isinstance(revision, str):
            continue
        revisions.add(revision)
        down = values.get("down_revision")
        parents.update([down] if isinstance(down, str) else list(down) if isinstance(down, tuple | list) else [])
    heads = sorted(revisions - parents)
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head in {directory}, found {heads or 'none'}")
    return heads[0]


async def database_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; ``None`` for a database never migrated."""
    async with engine.connect() as connection:
        try:
            rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        except (ProgrammingError, DBAPIError) as exc:
            if "alembic_version" in str(exc):  # no such table: never migrated
                return None
            raise
    return rows[0] if rows else None
