"""Provider presets: ``provider = "groq"`` (or another known host) fills in the base URL and the key variable; what
the catalog sets wins; a preset deployment speaks the OpenAI format through the router."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.llm.model import ChatMessage, ChatRole, CompletionRequest, ModelKind
from infrastructure.llm.catalog import CatalogError, parse_catalog
from infrastructure.llm.openai import NO_KEY
from infrastructure.llm.presets import PRESETS
from infrastructure.llm.registry import build_router
from infrastructure.settings import Settings
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.unit

HOSTED = {name: preset for name, preset in PRESETS.items() if preset.api_key_env is not None}
KEYS = {preset.api_key_env: f"key-{name}" for name, preset in HOSTED.items() if preset.api_key_env}


def table(provider: str, extra: str = "") -> str:
    return f'[models.m]\nprovider = "{provider}"\nupstream_model = "some-model"\nfree = true\n{extra}'


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_preset_sets_the_base_url_and_the_key_variable(name: str) -> None:
    catalog = parse_catalog(table(name), env=KEYS)
    transport = catalog.transport("m")
    assert transport.base_url == PRESETS[name].base_url
    assert transport.api_key_env == PRESETS[name].api_key_env
    spec = catalog.find("m")
    assert spec is not None
    assert spec.provider == name


@pytest.mark.parametrize("name", sorted(HOSTED))
def test_a_hosted_preset_without_its_key_stops_start_up_naming_the_variable(name: str) -> None:
    with pytest.raises(CatalogError, match=f"{HOSTED[name].api_key_env} \\(api_key_env\\) is not set"):
        parse_catalog(table(name), env={})


def test_what_the_catalog_sets_wins_over_the_preset() -> None:
    extra = 'base_url = "http://gpu-box:8000/v1"\napi_key_env = "MY_VLLM_KEY"\n'
    transport = parse_catalog(table("vllm", extra), env={"MY_VLLM_KEY": "k"}).transport("m")
    assert (transport.base_url, transport.api_key_env) == ("http://gpu-box:8000/v1", "MY_VLLM_KEY")


def test_embeddings_only_from_presets_that_serve_them() -> None:
    catalog = parse_catalog(
        '[models.chat]\nprovider = "local"\nupstream_model = "local-echo"\n'
        + table("mistral", 'kind = "embedding"\n').replace("models.m", "models.emb"),
        env=KEYS,
    )
    emb = catalog.find("emb")
    assert emb is not None
    assert emb.kind is ModelKind.EMBEDDING
    with pytest.raises(CatalogError, match="provider groq has no embeddings"):
        parse_catalog(
            '[models.chat]\nprovider = "local"\nupstream_model = "x"\n'
            + table("groq", 'kind = "embedding"\n').replace("models.m", "models.emb"),
            env=KEYS,
        )


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


@pytest.mark.parametrize("name", ["groq", "deepseek", "ollama"])
async def test_a_preset_deployment_answers_in_the_openai_format(upstream: FakeUpstream, name: str) -> None:
    upstream.reset()
    catalog = parse_catalog(table(name, f'base_url = "{upstream.base_url}/v1"\n'), env=KEYS)
    router = build_router(catalog, Settings(), KEYS)
    request = CompletionRequest(model="m", messages=(ChatMessage(ChatRole.USER, "hello"),), max_tokens=5)
    try:
        completion = await router.complete(request)
    finally:
        await router.aclose()

    assert completion.content == "Echo: hello"
    assert completion.served_by.provider == name
    sent = upstream.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.json["max_tokens"] == 5  # a compatible server's name for it
    assert sent.api_key == KEYS.get(PRESETS[name].api_key_env or "", NO_KEY)
