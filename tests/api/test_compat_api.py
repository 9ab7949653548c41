"""The compatible endpoints on the wire, without SDKs: error shapes, scopes, refusals, what reaches the gateway."""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
import orjson
import pytest
from dependency_injector import providers

from application.llm.call_stream import CallStream
from application.llm.model_call import Answer, ModelCall
from application.usage.context import CachePolicy, CallContext
from domain.llm.model import CompletionRequest
from domain.llm.ports import LLMProvider, ModelCatalog
from infrastructure.llm.local_embeddings import embed_text
from interfaces.http.compat.errors import Dialect, error_response
from tests.api.conftest import Api, assert_problem
from tests.fakes.llm import OneModel, ScriptedProvider

pytestmark = pytest.mark.api

HI = [{"role": "user", "content": "hi"}]
CHAT = {"model": "local", "messages": HI}
MESSAGE = {"model": "local", "max_tokens": 50, "messages": HI}


async def key_headers(api: Api, *, scopes: list[str] | None = None) -> dict[str, str]:
    jwt = await api.user("ada@example.com")
    body: dict[str, Any] = {"name": "compat"} if scopes is None else {"name": "compat", "scopes": scopes}
    created = await api.http.post("/api/v1/api-keys", json=body, headers=jwt)
    return {"Authorization": f"Bearer {created.json()['key']}"}


def openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code is not None:
        assert error["code"] == code
    return error


def anthropic_error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == kind
    assert body["request_id"] == response.headers["request-id"] == response.headers["x-request-id"]
    return body


async def test_invalid_requests_are_400_in_each_apis_shape(api: Api) -> None:
    headers = await key_headers(api)
    bad_json = {**headers, "content-type": "application/json"}

    error = openai_error(await api.http.post("/v1/chat/completions", json={**CHAT, "n": 2}, headers=headers), 400)
    assert (error["type"], error["param"]) == ("invalid_request_error", "n")
    openai_error(await api.http.post("/v1/chat/completions", content=b'{"model": ', headers=bad_json), 400)
    unknown_role = {**CHAT, "messages": [{"role": "wizard", "content": "hi"}]}
    openai_error(await api.http.post("/v1/chat/completions", json=unknown_role, headers=headers), 400)

    body = anthropic_error(
        await api.http.post("/v1/messages", json={**MESSAGE, "max_tokens": 0}, headers=headers),
        400,
        "invalid_request_error",
    )
    assert body["error"]["message"].startswith("max_tokens: ")
    missing = {"model": "local", "messages": HI}
    anthropic_error(await api.http.post("/v1/messages", json=missing, headers=headers), 400, "invalid_request_error")


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/v1/chat/completions", {**CHAT, "tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools"),
        (
            "/v1/chat/completions",
            {**CHAT, "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        (
            "/v1/chat/completions",
            {**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "'image_url' content is not supported",
        ),
        ("/v1/chat/completions", {**CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ("/v1/embeddings", {"model": "local-embed", "input": [1, 2, 3]}, "token arrays"),
        ("/v1/embeddings", {"model": "local-embed", "input": ["fine", ""]}, "may not be empty"),
        ("/v1/messages", {**MESSAGE, "messages": [{"role": "user", "content": [{"type": "image"}]}]}, "image"),
        (
            "/v1/messages",
            {**MESSAGE, "messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]},
            "tool_result blocks belong to user turns",
        ),
        ("/v1/messages", {**MESSAGE, "tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ],
)
async def test_requests_switchboard_cannot_honour_are_refused_with_400(
    api: Api, path: str, body: dict[str, Any], says: str
) -> None:
    response = await api.http.post(path, json=body, headers=await key_headers(api))

    assert response.status_code == 400, response.text
    assert says in response.text


async def test_a_model_of_the_wrong_kind_is_not_found(api: Api) -> None:
    headers = await key_headers(api)

    chat = openai_error(
        await api.http.post("/v1/chat/completions", json={**CHAT, "model": "local-embed"}, headers=headers),
        404,
        "model_not_found",
    )
    embed = openai_error(
        await api.http.post("/v1/embeddings", json={"model": "local", "input": "x"}, headers=headers),
        404,
        "model_not_found",
    )
    anthropic_error(
        await api.http.post("/v1/messages", json={**MESSAGE, "model": "local-embed"}, headers=headers),
        404,
        "not_found_error",
    )

    assert "embedding model, not a chat model" in chat["message"]
    assert "chat model, not an embedding model" in embed["message"]


async def test_a_key_without_the_chat_scope_is_403_but_may_list_models(api: Api) -> None:
    headers = await key_headers(api, scopes=["models"])

    openai_error(await api.http.post("/v1/chat/completions", json=CHAT, headers=headers), 403, "forbidden")
    openai_error(
        await api.http.post("/v1/embeddings", json={"model": "local-embed", "input": "x"}, headers=headers), 403
    )
    anthropic_error(await api.http.post("/v1/messages", json=MESSAGE, headers=headers), 403, "permission_error")
    assert (await api.http.get("/v1/models", headers=headers)).status_code == 200


async def test_credentials_as_bearer_or_x_api_key_and_a_login_token_too(api: Api) -> None:
    jwt = await api.user("ada@example.com")
    key = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=jwt)).json()["key"]

    assert (await api.http.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": key})).status_code == 200
    assert (
        await api.http.post("/v1/messages", json=MESSAGE, headers={"authorization": f"bearer {key}"})
    ).status_code == 200
    assert (await api.http.post("/v1/chat/completions", json=CHAT, headers=jwt)).status_code == 200
    error = openai_error(await api.http.post("/v1/chat/completions", json=CHAT), 401, "invalid_api_key")
    assert error["type"] == "invalid_request_error"
    basic = {"authorization": f"Basic {key}"}
    anthropic_error(await api.http.post("/v1/messages", json=MESSAGE, headers=basic), 401, "authentication_error")


async def test_unknown_paths_and_methods_under_v1_answer_in_the_apis_shape(api: Api) -> None:
    headers = await key_headers(api)

    error = openai_error(await api.http.post("/v1/edits", json={}, headers=headers), 404)
    assert error["message"] == "Invalid URL (POST /v1/edits)"
    openai_error(await api.http.get("/v1/chat/completions", headers=headers), 405)
    anthropic_error(await api.http.post("/v1/messages/drafts", json={}, headers=headers), 404, "not_found_error")
    not_found = await api.http.get("/v1/models/nope", headers={**headers, "anthropic-version": "2023-06-01"})
    anthropic_error(not_found, 404, "not_found_error")
    assert_problem(await api.http.get("/api/v1/nothing-here"), 404, "not_found")  # /api keeps problem+json


async def test_an_unexpected_error_is_a_bare_500_in_the_apis_shape(api: Api) -> None:
    class Boom:
        async def execute(self, *_: object) -> None:
            raise RuntimeError("secret internals: password=hunter2")

    headers = await key_headers(api)
    with api.app.state.container.create_completion.override(providers.Object(Boom())):
        chat = await api.http.post("/v1/chat/completions", json=CHAT, headers=headers)
        message = await api.http.post("/v1/messages", json=MESSAGE, headers=headers)

    assert openai_error(chat, 500)["type"] == "server_error"
    anthropic_error(message, 500, "api_error")
    for response in (chat, message):
        assert "hunter2" not in response.text
        assert "RuntimeError" not in response.text


class RecordingModelCall(ModelCall):
    def __init__(self, catalog: ModelCatalog) -> None:
        super().__init__(models=OneModel(ScriptedProvider(["fine"])), catalog=catalog)
        self.contexts: list[CallContext] = []
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest, context: CallContext) -> Answer:
        self.requests.append(request)
        self.contexts.append(context)
        return await super().complete(request, context)

    async def stream(self, request: CompletionRequest, context: CallContext) -> CallStream:
        self.requests.append(request)
        self.contexts.append(context)
        return await super().stream(request, context)


def scripted(api: Api, provider: LLMProvider) -> ModelCall:
    return ModelCall(models=OneModel(provider), catalog=api.app.state.container.catalog())


async def test_every_call_goes_through_the_model_call_with_who_asked_and_the_cache_choice(api: Api) -> None:
    headers = await key_headers(api)
    gateway = RecordingModelCall(api.app.state.container.catalog())
    with api.app.state.container.model_call.override(providers.Object(gateway)):
        await api.http.post("/v1/chat/completions", json=CHAT, headers={**headers, "x-request-id": "req-1"})
        await api.http.post(
            "/v1/messages", json={**MESSAGE, "stream": True}, headers={**headers, "cache-control": "no-store"}
        )

    assert gateway.contexts[0].request_id == "req-1"
    assert [c.cache for c in gateway.contexts] == [CachePolicy.DEFAULT, CachePolicy.BYPASS]
    assert all(c.conversation_id is None and c.principal.api_key_id is not None for c in gateway.contexts)
    assert [r.max_tokens for r in gateway.requests] == [None, 50]


async def test_openai_request_options_reach_the_model_request(api: Api) -> None:
    headers = await key_headers(api)
    gateway = RecordingModelCall(api.app.state.container.catalog())
    body = {
        **CHAT,
        "messages": [{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]}, *HI],
        "max_tokens": 9,
        "max_completion_tokens": 7,
        "top_p": 0.5,
        "stop": "END",
        "user": "u-1",
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
        "parallel_tool_calls": False,
        "seed": 3,
        "logit_bias": {"1": 2},
        "store": False,
    }
    with api.app.state.container.model_call.override(providers.Object(gateway)):
        assert (await api.http.post("/v1/chat/completions", json=body, headers=headers)).status_code == 200

    [sent] = gateway.requests
    assert [(m.role, m.content) for m in sent.messages] == [("system", "Be brief."), ("user", "hi")]
    assert (sent.max_tokens, sent.top_p, sent.stop, sent.user) == (7, 0.5, ("END",), "u-1")
    assert sent.response_format is not None
    assert (sent.response_format.type, sent.response_format.schema_json) == ("json_schema", '{"type":"object"}')
    assert sent.tool_choice is not None
    assert not sent.tool_choice.parallel


async def test_embeddings_as_floats_or_base64_float32(api: Api) -> None:
    headers = await key_headers(api)
    body = {"model": "local-embed", "input": "the cat sat", "dimensions": 16}

    floats = (await api.http.post("/v1/embeddings", json=body, headers=headers)).json()
    packed = (await api.http.post("/v1/embeddings", json={**body, "encoding_format": "base64"}, headers=headers)).json()

    vector = floats["data"][0]["embedding"]
    assert vector == pytest.approx(embed_text("the cat sat", 16))
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert list(struct.unpack("<16f", raw)) == pytest.approx(vector, abs=1e-6)
    assert floats["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    too_big = await api.http.post("/v1/embeddings", json={**body, "dimensions": 4096}, headers=headers)
    openai_error(too_big, 400, "upstream_rejected")


async def test_a_streamed_answer_that_breaks_ends_with_each_apis_error_event(api: Api) -> None:
    headers = await key_headers(api)
    broken = scripted(api, ScriptedProvider(["one ", "two ", "three"], fail_after=2))
    with api.app.state.container.model_call.override(providers.Object(broken)):
        chat = await api.http.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=headers)
        message = await api.http.post("/v1/messages", json={**MESSAGE, "stream": True}, headers=headers)

    frames = chat.text.strip().split("\n\n")
    assert frames[-1].startswith('data: {"error":')
    assert "[DONE]" not in chat.text
    assert '"content":"two "' in frames[-2]
    events = [frame.split("\n")[0] for frame in message.text.strip().split("\n\n")]
    assert events[:3] == ["event: message_start", "event: content_block_start", "event: ping"]
    assert events[-1] == "event: error"
    assert "message_stop" not in message.text


@pytest.mark.parametrize(
    ("dialect", "status", "wire_status", "kind"),
    [
        (Dialect.OPENAI, 402, 429, "insufficient_quota"),
        (Dialect.ANTHROPIC, 402, 402, "billing_error"),
        (Dialect.OPENAI, 503, 503, "server_error"),
        (Dialect.ANTHROPIC, 503, 529, "overloaded_error"),
        (Dialect.ANTHROPIC, 504, 504, "timeout_error"),
        (Dialect.ANTHROPIC, 502, 502, "api_error"),
    ],
)
def test_statuses_map_to_what_each_sdk_expects(dialect: Dialect, status: int, wire_status: int, kind: str) -> None:
    response = error_response(dialect, status, "no", code="budget_exceeded")

    assert response.status_code == wire_status
    body = orjson.loads(response.body)
    assert body["error"]["type"] == kind
    assert (response.headers.get("x-should-retry") == "false") is (status == 402)


@pytest.mark.parametrize("stream", [False, True])
async def test_max_tokens_above_the_models_limit_is_refused_in_each_apis_shape_never_capped(
    api: Api, stream: bool
) -> None:
    headers = await key_headers(api)
    limit = api.app.state.container.catalog().find("local").max_output_tokens
    over = limit + 1

    chat = await api.http.post(
        "/v1/chat/completions", json={**CHAT, "max_tokens": over, "stream": stream}, headers=headers
    )
    message = await api.http.post(
        "/v1/messages", json={**MESSAGE, "max_tokens": over, "stream": stream}, headers=headers
    )

    assert f"above the {limit} output tokens" in openai_error(chat, 400, "rule_violation")["message"]
    assert (
        f"above the {limit} output tokens" in anthropic_error(message, 400, "invalid_request_error")["error"]["message"]
    )
    at_limit = await api.http.post("/v1/chat/completions", json={**CHAT, "max_tokens": limit}, headers=headers)
    assert at_limit.status_code == 200  # the limit itself is allowed: refused above it, never capped


async def test_the_anthropic_model_list_has_chat_models_only_with_short_names(api: Api) -> None:
    headers = {**(await key_headers(api)), "anthropic-version": "2023-06-01"}
    listed = (await api.http.get("/v1/models", headers=headers)).json()
    assert [m["id"] for m in listed["data"]] == ["local"]  # not the embedding model local-embed
    assert listed["data"][0]["display_name"] == "local"
    assert listed["first_id"] == listed["last_id"] == "local"
    anthropic_error(await api.http.get("/v1/models/local-embed", headers=headers), 404, "not_found_error")
    openai_list = await api.http.get("/v1/models", headers={"Authorization": headers["Authorization"]})
    openai_ids = {m["id"] for m in openai_list.json()["data"]}
    assert openai_ids == {"local", "local-embed"}  # OpenAI's list keeps both: its embeddings API takes local-embed


@pytest.mark.parametrize("key", ["", "has space", "x" * 256])
async def test_a_malformed_idempotency_key_is_a_400_never_ignored(api: Api, key: str) -> None:
    headers = {**(await key_headers(api)), "Idempotency-Key": key}
    response = await api.http.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert "Idempotency-Key must be 1 to 255 visible ASCII characters" in openai_error(response, 400)["message"]
