"""Loggers are made after logging is configured: a structlog logger bound at import time keeps the defaults it was
made with (INFO, the console renderer), so its lines would ignore ``SWITCHBOARD_LOG_LEVEL`` and the JSON format (a
worker's job lines did). No module of the application binds one at module level."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "application", "infrastructure", "interfaces")


def _module_level_loggers(source: str) -> list[int]:
    lines = []
    for node in ast.parse(source).body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        for call in ast.walk(value) if value is not None else ():
            if isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", "")) == "get_logger":
                lines.append(node.lineno)
    return lines


def test_no_module_binds_a_logger_at_import_time() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for line in _module_level_loggers(path.read_text())
    ]
    assert found == []


def test_the_check_sees_a_module_level_logger() -> None:
    assert _module_level_loggers('_log = get_logger("x")\nlog: Any = structlog.get_logger()\n') == [1, 2]
    assert _module_level_loggers("def f() -> None:\n    log = get_logger('x')\n") == []
