"""The dependency audit fails on a known vulnerability, whichever PyPI document reported it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tools import audit_dependencies as audit

pytestmark = pytest.mark.unit
LOCK = "alpha==1.0 \\\n    --hash=sha256:00\nbeta==2.0 \\\n    --hash=sha256:11\ngamma==3.0\n"


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text(LOCK)
    return path


def _documents(monkeypatch: pytest.MonkeyPatch, documents: dict[str, dict[str, Any]]) -> None:
    monkeypatch.setattr(audit, "_project_document", lambda name: documents[name])


def test_a_clean_lock_passes(monkeypatch: pytest.MonkeyPatch, lock: Path) -> None:
    monkeypatch.setattr(audit, "_pip_audit", lambda _: {"alpha": [], "beta": [], "gamma": []})
    assert audit.main([str(lock)]) == 0


def test_pip_audit_findings_fail(monkeypatch: pytest.MonkeyPatch, lock: Path) -> None:
    monkeypatch.setattr(audit, "_pip_audit", lambda _: {"alpha": ["PYSEC-1"], "beta": [], "gamma": []})
    assert audit.main([str(lock)]) == 1


def test_skipped_packages_are_settled_by_the_project_document(
    monkeypatch: pytest.MonkeyPatch, lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(audit, "_pip_audit", lambda _: {"alpha": None, "beta": None, "gamma": []})
    _documents(
        monkeypatch,
        {
            "alpha": {"info": {"version": "1.0"}, "vulnerabilities": []},
            "beta": {"info": {"version": "2.0"}, "vulnerabilities": [{"id": "GHSA-x"}]},
        },
    )
    assert audit.main([str(lock)]) == 1
    assert "VULNERABLE beta==2.0: GHSA-x" in capsys.readouterr().out


def test_a_pin_behind_the_latest_release_is_unverified_and_fails_only_when_strict(
    monkeypatch: pytest.MonkeyPatch, lock: Path
) -> None:
    monkeypatch.setattr(audit, "_pip_audit", lambda _: {"alpha": None, "beta": [], "gamma": []})
    _documents(monkeypatch, {"alpha": {"info": {"version": "9.9"}, "vulnerabilities": []}})
    assert audit.main([str(lock)]) == 0
    assert audit.main([str(lock), "--strict"]) == 1
