"""The OpenAI Agents SDK (``openai-agents``), unchanged but for its client's base URL and key, against Switchboard on
a loopback port: an agent with a function tool, run (``Runner.run``) and streamed (``Runner.run_streamed``), on the
local model and on OpenAI- and Anthropic-backed models (the fake upstream). The SDK speaks the Responses API; the
tool round trip is two responses, and every upstream call has its usage record. Tracing is off (no export)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

from tests.api.conftest import PASSWORD
from tests.api.test_compat_sdk import CHAT_MODELS, Switchboard, switchboard  # noqa: F401 (fixtures)

pytestmark = pytest.mark.api

# The path each model's upstream call goes to on the fake upstream (the local model has none).
UPSTREAM_PATHS = {"gpt": "/v1/chat/completions", "claude": "/v1/messages"}


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny, 24 degrees in {city}"


@pytest.fixture(scope="module")
async def client(switchboard: Switchboard) -> AsyncIterator[openai.AsyncOpenAI]:  # noqa: F811
    set_tracing_disabled(True)
    async with httpx.AsyncClient(base_url=switchboard.url) as http:  # a key that may also read its usage
        account = {"email": "agents@example.com", "password": PASSWORD}
        assert (await http.post("/api/v1/auth/register", json=account)).status_code == 201
        form = {"username": account["email"], "password": PASSWORD}
        jwt = {"Authorization": f"Bearer {(await http.post('/api/v1/auth/token', data=form)).json()['access_token']}"}
        scoped = {"name": "agents", "scopes": ["chat", "usage"]}
        key = (await http.post("/api/v1/api-keys", json=scoped, headers=jwt)).json()["key"]
    sdk = openai.AsyncOpenAI(base_url=f"{switchboard.url}/v1", api_key=key, max_retries=0, timeout=10)
    yield sdk
    await sdk.close()


def agent(client: openai.AsyncOpenAI, model: str) -> Agent[Any]:
    return Agent(
        name="forecaster",
        instructions="Answer with the weather tool.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model=model, openai_client=client),
    )


async def _usage_requests(switchboard: Switchboard, client: openai.AsyncOpenAI) -> int:  # noqa: F811
    await switchboard.app.state.container.usage_recorder().flush()
    async with httpx.AsyncClient(base_url=switchboard.url) as http:
        report = await http.get("/api/v1/usage", headers={"Authorization": f"Bearer {client.api_key}"})
    return int(report.json()["totals"]["requests"])


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_an_agent_calls_its_tool_and_answers(
    switchboard: Switchboard,  # noqa: F811
    client: openai.AsyncOpenAI,
    model: str,
) -> None:
    switchboard.upstream.reset()
    before = await _usage_requests(switchboard, client)

    result = await Runner.run(agent(client, model), "What is the weather in Paris? CALL_TOOL")

    calls = [item for item in result.new_items if item.type == "tool_call_item"]
    outputs = [item for item in result.new_items if item.type == "tool_call_output_item"]
    assert len(calls) == 1
    assert outputs[0].output == "sunny, 24 degrees in test"  # the local and fake models' example argument
    assert "sunny, 24 degrees" in result.final_output
    assert len(result.raw_responses) == 2  # the tool call, then the answer
    assert await _usage_requests(switchboard, client) - before == 2
    if model in UPSTREAM_PATHS:
        assert len(switchboard.upstream.requests_to(UPSTREAM_PATHS[model])) == 2


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_an_agent_streamed(
    switchboard: Switchboard,  # noqa: F811
    client: openai.AsyncOpenAI,
    model: str,
) -> None:
    switchboard.upstream.reset()
    before = await _usage_requests(switchboard, client)

    streamed = Runner.run_streamed(agent(client, model), "Weather in Paris, please. CALL_TOOL")
    kinds: list[str] = []
    deltas: list[str] = []
    async for event in streamed.stream_events():
        if event.type == "raw_response_event":
            kinds.append(event.data.type)
            if event.data.type == "response.output_text.delta":
                deltas.append(event.data.delta)
        elif event.type == "run_item_stream_event":
            kinds.append(event.name)

    assert "tool_called" in kinds
    assert "tool_output" in kinds
    assert kinds.count("response.completed") == 2
    assert "".join(deltas) == streamed.final_output
    assert "sunny, 24 degrees" in streamed.final_output
    assert await _usage_requests(switchboard, client) - before == 2
    if model in UPSTREAM_PATHS:
        assert len(switchboard.upstream.requests_to(UPSTREAM_PATHS[model])) == 2
