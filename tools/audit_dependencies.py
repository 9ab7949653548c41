"""Audit the exported lock file (``requirements.lock``) against PyPI's vulnerability data; exit 1 on any finding.

``pip-audit -s pypi`` asks PyPI's per-release JSON API (``/pypi/NAME/VERSION/json``) about each pin. Some PyPI
mirrors serve only the per-project document (``/pypi/NAME/json``), whose ``vulnerabilities`` describe the latest
release; pip-audit then skips every package as "not found" and still says "No known vulnerabilities found". So:
every package pip-audit could not audit is looked up in its project document, which settles it when the pin is the
latest release (a pin behind the latest one is reported as unverified; ``--strict`` makes that fail too).
Nothing here installs anything or reads the environment: the lock file is the whole input.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PYPI_PROJECT = "https://pypi.org/pypi/{name}/json"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def _pip_audit(lock: Path) -> dict[str, list[str] | None]:
    """Vulnerability ids per package from pip-audit; ``None`` for a package it skipped."""
    command = [
        sys.executable, "-m", "pip_audit", "-s", "pypi", "-r", str(lock),
        "--require-hashes", "--disable-pip", "-f", "json", "--progress-spinner", "off",
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(completed.stderr)
        raise SystemExit("pip-audit did not produce a report") from None
    result: dict[str, list[str] | None] = {}
    for dependency in report["dependencies"]:
        name = dependency["name"].lower()
        result[name] = None if "skip_reason" in dependency else [v["id"] for v in dependency.get("vulns", [])]
    return result


def _project_document(name: str) -> dict[str, object]:
    with urllib.request.urlopen(PYPI_PROJECT.format(name=name), timeout=20) as response:  # noqa: S310 - fixed https URL
        document: dict[str, object] = json.load(response)
    return document


def _from_project_document(name: str, version: str) -> list[str] | None:
    """Vulnerability ids when ``version`` is the latest release (the document describes only that one)."""
    document = _project_document(name)
    info = document.get("info")
    latest = info.get("version") if isinstance(info, dict) else None
    if latest != version:
        return None
    vulnerabilities = document.get("vulnerabilities")
    return [str(v["id"]) for v in vulnerabilities] if isinstance(vulnerabilities, list) else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path, nargs="?", default=Path("requirements.lock"))
    parser.add_argument("--strict", action="store_true", help="also fail when a pin could not be verified")
    args = parser.parse_args(argv)
    pins = {name.lower(): version for name, version in _PIN.findall(args.lock.read_text())}
    found = _pip_audit(args.lock)
    skipped = sorted(name for name in pins if found.get(name) is None)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for name, ids in zip(skipped, pool.map(lambda n: _from_project_document(n, pins[n]), skipped), strict=True):
            found[name] = ids
    vulnerable = {name: ids for name, ids in found.items() if ids}
    unverified = sorted(name for name in pins if found.get(name) is None)
    for name, ids in sorted(vulnerable.items()):
        print(f"VULNERABLE {name}=={pins.get(name, '?')}: {', '.join(ids)}")
    for name in unverified:
        print(f"unverified {name}=={pins[name]}: not the latest release and PyPI's per-release data is unreachable")
    print(f"audited {len(pins) - len(unverified)} of {len(pins)} pinned packages: {len(vulnerable)} vulnerable")
    return 1 if vulnerable or (args.strict and unverified) else 0


if __name__ == "__main__":
    raise SystemExit(main())
