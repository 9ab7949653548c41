"""The dependency rule: domain and application import no outer layer and no framework."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
INNER_ALLOWED = {"domain": {"domain"}, "application": {"domain", "application"}}
PROJECT_PACKAGES = {"domain", "application", "infrastructure", "interfaces", "migrations", "tests"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(INNER_ALLOWED))
def test_inner_layers_import_only_the_standard_library_and_inner_layers(layer: str) -> None:
    offenders = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for name in _imports(path):
            is_stdlib = name in sys.stdlib_module_names or name == "__future__"
            if name in PROJECT_PACKAGES and name not in INNER_ALLOWED[layer]:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
            elif name not in PROJECT_PACKAGES and not is_stdlib:
                offenders.append(f"{path.relative_to(ROOT)} imports third-party {name}")
    assert offenders == []


def test_import_linter_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
