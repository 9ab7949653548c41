"""Background responses (``background: true``) on the in-process job queue: queued, run off the request by a job
through the one pipeline, polled, cancelled (the model call closed, what it produced kept), and idempotent: a job run
twice, or a runner that died, never makes a second model call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from dependency_injector import providers

from application.responses.prepare import ResponseCommand
from application.responses.run_background_response import RunBackgroundResponse
from application.responses.start_background_response import StartBackgroundResponse
from domain.llm.model import ChatMessage, ChatRole, CompletionRequest, StreamEvent, TextDelta
from domain.responses.model import ResponseStatus, parse_public_id
from domain.shared.clock import SystemClock
from tests.api.conftest import Api
from tests.api.test_compat_api import key_headers, openai_error, scripted
from tests.fakes.llm import ScriptedProvider

pytestmark = pytest.mark.api

HEARTBEAT = 0.05


class HangingProvider(ScriptedProvider):
    """Says its first piece, then waits until the call is closed."""

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        self.calls += 1
        try:
            yield TextDelta(self.pieces[0])
            await asyncio.Event().wait()
        finally:
            self.closed = True


def fast_heartbeat(api: Api, model_call: Any = None) -> Any:
    container = api.app.state.container
    return container.run_background_response.override(
        providers.Factory(
            RunBackgroundResponse,
            uow=container.uow,
            model_call=providers.Object(model_call) if model_call is not None else container.model_call,
            clock=container.clock,
            heartbeat_seconds=HEARTBEAT,
        )
    )


async def until(api: Api, response_id: str, headers: dict[str, str], *statuses: str) -> dict[str, Any]:
    for _ in range(200):
        body: dict[str, Any] = (await api.http.get(f"/v1/responses/{response_id}", headers=headers)).json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"{response_id} never reached {statuses}: {body['status']}")


async def test_a_background_response_is_queued_then_answered_and_billed_once(api: Api) -> None:
    headers = await key_headers(api, scopes=["chat", "usage"])
    body = {"model": "local", "input": "hello background", "background": True, "instructions": "Be brief."}
    created = await api.http.post("/v1/responses", json=body, headers=headers)

    assert created.status_code == 200, created.text
    queued = created.json()
    assert queued["status"] == "queued"
    assert queued["background"] is True
    assert queued["output"] == []
    assert queued["usage"] is None
    assert queued["completed_at"] is None
    done = await until(api, queued["id"], headers, "completed")
    assert "hello background" in done["output"][0]["content"][0]["text"]
    assert done["usage"]["output_tokens"] > 0
    assert done["instructions"] == "Be brief."
    await api.app.state.container.usage_recorder().flush()
    usage = (await api.http.get("/api/v1/usage", headers=headers)).json()
    assert usage["totals"]["requests"] == 1


async def test_a_background_tool_call_and_its_round_trip(api: Api) -> None:
    headers = await key_headers(api)
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    body = {"model": "local", "input": "CALL_TOOL", "tools": [tool], "background": True}
    first = await until(
        api, (await api.http.post("/v1/responses", json=body, headers=headers)).json()["id"], headers, "completed"
    )
    [call] = first["output"]
    assert call["type"] == "function_call"
    assert call["name"] == "lookup"

    follow = {
        "model": "local",
        "previous_response_id": first["id"],
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "forty-two"}],
        "background": True,
    }
    second = await api.http.post("/v1/responses", json=follow, headers=headers)
    answered = await until(api, second.json()["id"], headers, "completed")
    assert "forty-two" in answered["output"][0]["content"][0]["text"]


async def test_cancel_stops_the_model_call_and_keeps_what_it_produced(api: Api) -> None:
    headers = await key_headers(api)
    hanging = HangingProvider(["first words "])
    with fast_heartbeat(api, scripted(api, hanging)):
        created = await api.http.post(
            "/v1/responses", json={"model": "local", "input": "x", "background": True}, headers=headers
        )
        response_id = created.json()["id"]
        await until(api, response_id, headers, "in_progress")
        for _ in range(100):  # its first piece reached the runner's heartbeat
            if hanging.calls:
                break
            await asyncio.sleep(0.02)

        cancelled = await api.http.post(f"/v1/responses/{response_id}/cancel", headers=headers)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        for _ in range(200):
            if hanging.closed:
                break
            await asyncio.sleep(0.02)
        assert hanging.closed  # the upstream call was closed
        await asyncio.sleep(0.1)

    stored = (await api.http.get(f"/v1/responses/{response_id}", headers=headers)).json()
    assert stored["status"] == "cancelled"
    assert stored["output"][0]["content"][0]["text"] == "first words "
    again = await api.http.post(f"/v1/responses/{response_id}/cancel", headers=headers)
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"
    assert hanging.calls == 1


async def test_a_queued_response_cancelled_never_calls_the_model(api: Api) -> None:
    headers = await key_headers(api)
    provider = ScriptedProvider(["never"])
    container = api.app.state.container
    with fast_heartbeat(api, scripted(api, provider)):
        started = StartBackgroundResponse(uow=container.uow(), model_call=container.model_call(), clock=SystemClock())
        principal = await container.authenticate().execute(headers["Authorization"].removeprefix("Bearer "))
        queue = container.job_queue()
        queue.put = lambda job: None  # the job is lost for now (as in a crash): the response stays queued
        command = ResponseCommand(principal=principal, request=CompletionRequest(model="local", messages=()))
        record = await started.execute(replace(command, request=replace(command.request, messages=(_user("x"),))))
        del queue.put
        cancelled = await api.http.post(f"/v1/responses/{record.public_id}/cancel", headers=headers)
        assert cancelled.json()["status"] == "cancelled"
        assert await container.recover_background_responses().execute() == 0  # nothing left unfinished
        await container.run_background_response().execute(record.id)  # the job, if it turned up after all

    assert provider.calls == 0
    stored = (await api.http.get(f"/v1/responses/{record.public_id}", headers=headers)).json()
    assert stored["status"] == "cancelled"
    assert stored["output"] == []


async def test_a_job_lost_with_its_process_is_queued_again_at_start_up(api: Api) -> None:
    headers = await key_headers(api)
    container = api.app.state.container
    queue = container.job_queue()
    queue.put = lambda job: None  # the process dies before its in-memory queue runs the job
    created = await api.http.post(
        "/v1/responses", json={"model": "local", "input": "x", "background": True}, headers=headers
    )
    del queue.put
    assert (await api.http.get(f"/v1/responses/{created.json()['id']}", headers=headers)).json()["status"] == "queued"

    assert await container.recover_background_responses().execute() == 1  # what the next start-up does
    assert (await until(api, created.json()["id"], headers, "completed"))["output"]


def _user(text: str) -> ChatMessage:
    return ChatMessage(ChatRole.USER, text)


async def test_cancelling_what_cannot_be_cancelled_is_a_400(api: Api) -> None:
    headers = await key_headers(api)
    whole = (await api.http.post("/v1/responses", json={"model": "local", "input": "x"}, headers=headers)).json()
    error = openai_error(await api.http.post(f"/v1/responses/{whole['id']}/cancel", headers=headers), 400)
    assert error["type"] == "invalid_request_error"
    assert "background" in error["message"]

    created = await api.http.post(
        "/v1/responses", json={"model": "local", "input": "x", "background": True}, headers=headers
    )
    done = await until(api, created.json()["id"], headers, "completed")
    error = openai_error(await api.http.post(f"/v1/responses/{done['id']}/cancel", headers=headers), 400)
    assert error["message"] == "Cannot cancel a completed response."
    missing = await api.http.post(f"/v1/responses/resp_{uuid.uuid4().hex}/cancel", headers=headers)
    openai_error(missing, 404)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"model": "local", "input": "x", "background": True, "store": False}, "stored"),
        ({"model": "nope", "input": "x", "background": True}, "nope"),
        ({"model": "local", "input": "x", "background": True, "max_output_tokens": 10**6}, "max_tokens"),
        (
            {
                "model": "local",
                "input": "x",
                "background": True,
                "tools": [{"type": "file_search", "vector_store_ids": ["vs_" + "0" * 32]}],
            },
            "file_search",
        ),
    ],
)
async def test_what_would_be_refused_is_refused_at_once(api: Api, body: dict[str, Any], words: str) -> None:
    headers = await key_headers(api)
    refused = await api.http.post("/v1/responses", json=body, headers=headers)
    assert refused.status_code in (400, 404), refused.text
    assert words in refused.json()["error"]["message"]


async def test_a_job_run_twice_changes_nothing(api: Api) -> None:
    headers = await key_headers(api)
    provider = ScriptedProvider(["once"])
    with fast_heartbeat(api, scripted(api, provider)):
        created = await api.http.post(
            "/v1/responses", json={"model": "local", "input": "x", "background": True}, headers=headers
        )
        done = await until(api, created.json()["id"], headers, "completed")
        response_id = parse_public_id(done["id"])
        assert response_id is not None
        await api.app.state.container.run_background_response().execute(response_id)

    assert provider.calls == 1
    assert (await api.http.get(f"/v1/responses/{done['id']}", headers=headers)).json() == done


async def test_a_runner_that_died_leaves_the_response_failed_never_run_again(api: Api) -> None:
    headers = await key_headers(api)
    provider = ScriptedProvider(["late"])
    container = api.app.state.container
    created = await api.http.post("/v1/responses", json={"model": "local", "input": "x"}, headers=headers)
    response_id = parse_public_id(created.json()["id"])
    assert response_id is not None
    async with container.uow()() as uow:  # as a worker killed mid-call leaves it: in progress, silent for a minute
        record = await uow.responses.find(response_id)
        assert record is not None
        record.status, record.background = ResponseStatus.IN_PROGRESS, True
        record.heartbeat_at = datetime.now(UTC) - timedelta(minutes=1)
        await uow.responses.update(record)
        await uow.commit()

    with fast_heartbeat(api, scripted(api, provider)):
        await container.run_background_response().execute(response_id)  # the queue runs its job again

    assert provider.calls == 0
    failed = (await api.http.get(f"/v1/responses/{created.json()['id']}", headers=headers)).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "server_error"


async def test_reading_an_abandoned_response_shows_it_failed(api: Api) -> None:
    headers = await key_headers(api)
    container = api.app.state.container
    created = await api.http.post("/v1/responses", json={"model": "local", "input": "x"}, headers=headers)
    response_id = parse_public_id(created.json()["id"])
    assert response_id is not None
    async with container.uow()() as uow:
        record = await uow.responses.find(response_id)
        assert record is not None
        record.status, record.background, record.heartbeat_at = ResponseStatus.IN_PROGRESS, True, None
        await uow.responses.update(record)
        await uow.commit()

    shown = (await api.http.get(f"/v1/responses/{created.json()['id']}", headers=headers)).json()
    assert shown["status"] == "failed"
    assert "create it again" in shown["error"]["message"]


async def test_a_streamed_background_response_shows_its_text_as_it_runs_and_its_cancel(api: Api) -> None:
    headers = await key_headers(api)
    hanging = HangingProvider(["first words "])
    with fast_heartbeat(api, scripted(api, hanging)):
        body = {"model": "local", "input": "x", "background": True, "stream": True}
        streamed = asyncio.ensure_future(api.http.post("/v1/responses", json=body, headers=headers))
        for _ in range(200):  # the model said its first piece, and the runner stored it at a heartbeat
            if hanging.calls:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(HEARTBEAT * 4)
        async with api.app.state.container.uow()() as uow:
            [record] = await uow.responses.list_unfinished_background(10)
        assert record.marks == (len("first words "),)
        cancelled = await api.http.post(f"/v1/responses/{record.public_id}/cancel", headers=headers)
        assert cancelled.status_code == 200
        events = [orjson.loads(line[6:]) for line in (await streamed).text.split("\n") if line.startswith("data: ")]

    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["first words "]
    assert events[-1]["response"]["status"] == "cancelled"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "first words "
