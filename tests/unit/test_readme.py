from __future__ import annotations

from pathlib import Path

import pytest

from interfaces.settings_reference import render_into

pytestmark = pytest.mark.unit
README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_configuration_reference_matches_the_settings() -> None:
    text = README.read_text(encoding="utf-8")
    assert render_into(text) == text, "stale: run `uv run switchboard settings-reference --write README.md`"


def test_the_quick_start_is_two_commands() -> None:
    quick_start = README.read_text(encoding="utf-8").split("## Quick start", 1)[1].split("```bash", 1)[1]
    commands = [line for line in quick_start.split("```", 1)[0].splitlines() if line.strip()]
    assert [c.split("#")[0].strip() for c in commands] == ["make run", "make test"]
