"""The ``switchboard`` command as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from interfaces.cli import main
from tests.api.conftest import PASSWORD, make_settings, running_api

pytestmark = pytest.mark.integration


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_migrate_then_create_admin(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_ADMIN_PASSWORD": PASSWORD,
        "SWITCHBOARD_ARGON2_MEMORY_KIB": "8",
        "SWITCHBOARD_ARGON2_PARALLELISM": "1",
    }
    migrated = _run(["migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    created = _run(["create-admin", "--email", "root@example.com"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    assert PASSWORD not in created.stdout + created.stderr
    again = _run(["create-admin", "--email", "root@example.com"], env, tmp_path)
    assert again.returncode == 1
    assert "already exists" in again.stderr

    async with running_api(make_settings(database_url=url)) as api:
        tokens = await api.log_in("root@example.com")
        me = await api.http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.json()["role"] == "admin"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SWITCHBOARD_PORT": "not-a-port"}, "SWITCHBOARD_PORT"),
        ({"SWITCHBOARD_ENVIRONMENT": "production"}, "SWITCHBOARD_JWT_SECRET"),
        ({"SWITCHBOARD_JWT_SECRET": "too-short-secret-value"}, "SWITCHBOARD_JWT_SECRET"),
        ({"SWITCHBOARD_CATALOG_PATH": "/nonexistent/models.toml"}, "catalog file not found"),
        ({"SWITCHBOARD_ARGON2_MEMORY_KIB": "8"}, "SWITCHBOARD_ARGON2_MEMORY_KIB"),
    ],
)
def test_bad_configuration_stops_start_up_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str], named: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["migrate"]) == 2
    stderr = capsys.readouterr().err
    assert named in stderr
    assert "too-short-secret-value" not in stderr


MEMORY_PROBE = """
from argon2 import PasswordHasher
from interfaces.cli import return_large_blocks

def rss_mib():
    with open('/proc/self/status') as status:
        return next(int(line.split()[1]) for line in status if line.startswith('VmRSS')) // 1024

fixed = return_large_blocks()
hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)  # OWASP's minimum: 19 MiB of work area
hasher.hash('a long bench passphrase')
before = rss_mib()
for _ in range(3):
    hasher.hash('a long bench passphrase')
print(fixed, rss_mib() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator and /proc are Linux's")
def test_a_served_process_gives_password_hashing_memory_back(tmp_path: Path) -> None:
    """Without a fixed mmap threshold, glibc serves argon2's second 19 MiB work area from the heap and keeps it."""
    fixed = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=60, check=True)
    applied, grown = fixed.stdout.split()
    assert applied == "True"
    assert int(grown) < 8, fixed.stdout
