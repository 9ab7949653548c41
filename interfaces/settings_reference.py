"""The configuration reference, generated from ``Settings`` so that the README cannot drift from the code."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pydantic.fields import FieldInfo

from infrastructure.settings import Settings

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
_ROOT = Path(__file__).resolve().parents[1]


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, Path):
        with contextlib.suppress(ValueError):
            value = value.relative_to(_ROOT)
    if isinstance(value, bool):
        value = str(value).lower()
    return f"`{value}`"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `SWITCHBOARD_{name.upper()}` | {_default(field)} | {description} |")
    return "\n".join(rows)


def render_into(readme: str) -> str:
    """``readme`` with the text between the settings markers replaced by the current table."""
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{settings_table()}\n{END}{tail}"
