"""Background responses on the real databases: SQLite with the in-process queue, PostgreSQL with procrastinate's
(the job enqueued in the response's own transaction, run by a procrastinate worker as a worker process runs it)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

from interfaces.jobs import run_worker
from tests.api.conftest import make_settings, running_api

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


async def test_a_background_response_runs_and_can_be_cancelled(database_url: str) -> None:
    async with running_api(make_settings(database_url=database_url)) as api:
        container = api.app.state.container
        worker = None
        if database_url.startswith("postgresql"):  # the server only enqueues: a worker process runs the jobs
            worker = asyncio.create_task(run_worker(container))
        ada = await api.user(f"ada-{uuid.uuid4().hex[:8]}@example.com")
        body = {"model": "local", "input": "from the queue", "background": True}
        created = (await api.http.post("/v1/responses", json=body, headers=ada)).json()
        assert created["status"] == "queued"

        done: dict[str, Any] = {}
        for _ in range(300):
            done = (await api.http.get(f"/v1/responses/{created['id']}", headers=ada)).json()
            if done["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        assert done["status"] == "completed"
        assert "from the queue" in done["output"][0]["content"][0]["text"]
        refused = await api.http.post(f"/v1/responses/{created['id']}/cancel", headers=ada)
        assert refused.status_code == 400
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
