"""The legacy ``POST /v1/completions`` (a prompt in, text out) through the official OpenAI SDK and on the wire."""

from __future__ import annotations

import openai
import pytest

from tests.api.conftest import Api
from tests.api.test_compat_api import key_headers, openai_error

pytestmark = pytest.mark.api


@pytest.fixture
async def client(api: Api) -> openai.AsyncOpenAI:
    key = (await key_headers(api))["Authorization"].removeprefix("Bearer ")
    base = str(api.http.base_url).rstrip("/")
    return openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, http_client=api.http, max_retries=0)


async def test_a_prompt_is_answered_by_a_chat_model_in_the_text_completion_shape(client: openai.AsyncOpenAI) -> None:
    completion = await client.completions.create(model="local", prompt="Say hello to the gateway", max_tokens=200)

    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    assert completion.model == "local"
    [choice] = completion.choices
    assert "hello to the gateway" in choice.text
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


async def test_max_tokens_defaults_to_sixteen_as_openais_does(client: openai.AsyncOpenAI) -> None:
    long_prompt = "tell me everything about " + "the many words of this prompt " * 20
    completion = await client.completions.create(model="local", prompt=long_prompt)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 16


async def test_a_streamed_completion_ends_with_its_finish_reason_and_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.completions.create(
        model="local", prompt=["Stream a greeting"], max_tokens=200, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    texts = "".join(c.choices[0].text for c in chunks if c.choices)
    assert "Stream a greeting" in texts
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"prompt": ["one", "two"]}, "exactly one prompt"),
        ({"prompt": ""}, "must not be empty"),
        ({"suffix": "end"}, "insertion is not supported"),
        ({"echo": True}, "echo"),
        ({"logprobs": 2}, "logprobs"),
        ({"n": 2}, "n"),
        ({"max_tokens": 10_000_000}, "above the"),
        ({"model": "nope"}, "does not exist"),
    ],
)
async def test_what_a_chat_model_cannot_honour_is_a_clear_400(api: Api, change: dict[str, object], says: str) -> None:
    headers = await key_headers(api)
    response = await api.http.post(
        "/v1/completions", json={"model": "local", "prompt": "hi", **change}, headers=headers
    )
    status = 404 if change.get("model") == "nope" else 400
    assert says in openai_error(response, status)["message"]
