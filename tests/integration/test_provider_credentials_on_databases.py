"""Provider keys users bring, on SQLite and PostgreSQL: a dump of every table shows no secret, rotation re-encrypts
under the new key while the old one still reads, and a start-up that could not read stored credentials stops."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from infrastructure.db.engine import create_engine
from infrastructure.security.credential_keys import decode_key, key_id, new_key
from infrastructure.settings import SettingsError
from tests.api.conftest import Api, make_settings, running_api
from tests.api.test_provider_credentials_api import catalog
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.integration

SECRET = "sk-ada-dump-secret-0f9e8d7c6b5a"
OPERATOR = "sk-operator-openai-1111"


@pytest.fixture(params=["sqlite", "postgres"])
def database_factory(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_database_factory")


@pytest.fixture
async def database_url(database_factory: Any) -> AsyncIterator[str]:
    """A fresh database of its own, migrated: its dump holds this test's rows only."""
    async with database_factory(migrate=True) as url:
        yield url


@pytest.fixture
async def upstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUpstream]:
    for name in ("SB_BYOK_OPENAI", "SB_BYOK_ANTHROPIC", "SB_BYOK_GEMINI"):
        monkeypatch.setenv(name, OPERATOR)
    async with FakeUpstream() as up:
        yield up


def settings(tmp_path: Path, upstream: FakeUpstream, database_url: str, keys: list[str] | None) -> Any:
    path = tmp_path / "models.toml"
    path.write_text(catalog(upstream.base_url))
    return make_settings(
        database_url=database_url, catalog_path=path, credential_keys=",".join(keys) if keys is not None else None
    )


async def store_and_call(api: Api) -> dict[str, str]:
    ada = await api.user("ada@example.com")
    stored = await api.http.put("/api/v1/provider-credentials/openai", json={"api_key": SECRET}, headers=ada)
    assert stored.status_code == 201, stored.text
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    assert (await api.http.post("/v1/chat/completions", json=body, headers=ada)).status_code == 200
    await api.app.state.container.usage_recorder().flush()
    return ada


async def dump(database_url: str) -> str:
    """Every row of every table (Alembic's and the job queue's included), as text."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            assert "provider_credentials" in names
            lines = []
            for name in names:
                rows = (await connection.execute(text(f'SELECT * FROM "{name}"'))).all()
                lines += [f"{name}: {row!r}" for row in rows]
        return "\n".join(lines)
    finally:
        await engine.dispose()


async def test_a_database_dump_shows_no_secret(database_url: str, upstream: FakeUpstream, tmp_path: Path) -> None:
    kek = new_key()
    async with running_api(settings(tmp_path, upstream, database_url, [kek])) as api:
        await store_and_call(api)
    assert upstream.last_request.api_key == SECRET  # the call went out with it: it was stored and read back
    dumped = await dump(database_url)
    assert "…6b5a" in dumped
    assert key_id(decode_key(kek)) in dumped
    assert "'user'" in dumped  # the usage record says whose key paid
    for form in (SECRET, SECRET[3:], base64.b64encode(SECRET.encode()).decode(), SECRET.encode().hex()):
        assert form not in dumped
    assert kek not in dumped
    if database_url.startswith("sqlite"):  # the file itself, free pages and all
        raw = Path(database_url.partition("///")[2]).read_bytes()
        assert SECRET.encode() not in raw


def rotate(database_url: str, keys: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": database_url, "SWITCHBOARD_CREDENTIAL_KEYS": ",".join(keys)}
    command = [sys.executable, "-m", "interfaces.cli", "rotate-credentials"]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


async def test_rotation_re_encrypts_under_the_new_key_and_the_old_one_may_then_go(
    database_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    old, new = new_key(), new_key()
    async with running_api(settings(tmp_path, upstream, database_url, [old])) as api:
        await store_and_call(api)

    async with running_api(settings(tmp_path, upstream, database_url, [new, old])) as api:  # new first: old reads
        ada = {"Authorization": f"Bearer {(await api.log_in('ada@example.com'))['access_token']}"}
        body = {"model": "solo", "messages": [{"role": "user", "content": "hi"}]}
        assert (await api.http.post("/v1/chat/completions", json=body, headers=ada)).status_code == 200
        assert upstream.last_request.api_key == SECRET
        rotation = api.app.state.container.rotate_provider_credentials()
        if database_url.startswith("sqlite"):  # as an operator runs it (once: a process start costs seconds)
            rotated = rotate(database_url, [new, old], tmp_path)
            assert rotated.returncode == 0, rotated.stderr
            assert "1 examined, 1 re-encrypted" in rotated.stdout
            assert SECRET not in rotated.stdout + rotated.stderr
        else:
            assert (await rotation.execute()).re_encrypted == 1
        again = await rotation.execute()  # run twice, changes nothing the second time
        assert (again.examined, again.re_encrypted) == (1, 0)

    with pytest.raises(SettingsError, match=key_id(decode_key(new))):  # the old key alone no longer reads it
        async with running_api(settings(tmp_path, upstream, database_url, [old])):
            pass
    async with running_api(settings(tmp_path, upstream, database_url, [new])) as api:  # the old key dropped
        ada = {"Authorization": f"Bearer {(await api.log_in('ada@example.com'))['access_token']}"}
        body = {"model": "solo", "messages": [{"role": "user", "content": "hi"}]}
        assert (await api.http.post("/v1/chat/completions", json=body, headers=ada)).status_code == 200
        assert upstream.last_request.api_key == SECRET


async def test_a_start_up_without_a_key_while_credentials_exist_stops(
    database_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with running_api(settings(tmp_path, upstream, database_url, [new_key()])) as api:
        await store_and_call(api)
    with pytest.raises(SettingsError, match="SWITCHBOARD_CREDENTIAL_KEYS is not set"):
        async with running_api(settings(tmp_path, upstream, database_url, None)):
            pass
