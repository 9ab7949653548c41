"""The EmbeddingProvider port, one contract run against the local embedder and the OpenAI, Azure OpenAI and Gemini
adapters (on the fake)."""

from __future__ import annotations

import abc
import math
from collections.abc import AsyncIterator

import pytest

from domain.llm.model import EmbeddingRequest, ModelKind, ModelSpec
from domain.llm.ports import EmbeddingProvider
from domain.shared.errors import UpstreamRateLimited, UpstreamRejected
from infrastructure.llm.azure_openai import AzureOpenAIProvider
from infrastructure.llm.gemini import GeminiProvider
from infrastructure.llm.local_embeddings import LocalEmbeddingProvider, embed_text
from infrastructure.llm.openai import OpenAIBase, OpenAIProvider
from infrastructure.llm.openai_sdk import OpenAISDKProvider
from infrastructure.llm.transport import Transport
from tests.fakes.upstream import FakeUpstream, rate_limited

pytestmark = pytest.mark.contract

TEXTS = EmbeddingRequest(model="e", inputs=("the cat sat on the mat", "a dog in the fog", "the cat sat on the mat"))


def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


class EmbeddingProviderContract(abc.ABC):
    size: int

    @abc.abstractmethod
    def provider(self) -> EmbeddingProvider: ...

    async def test_one_unit_vector_per_input_in_order_equal_texts_equal_vectors(
        self, provider: EmbeddingProvider
    ) -> None:
        result = await provider.embed(TEXTS)

        assert len(result.vectors) == 3
        assert all(len(v) == self.size for v in result.vectors)
        assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5) for v in result.vectors)
        assert result.vectors[0] == result.vectors[2]
        assert result.vectors[0] != result.vectors[1]
        assert result.usage.input_tokens > 0
        assert result.usage.output_tokens == 0
        assert result.served_by.model == "e"

    async def test_the_same_texts_always_get_the_same_vectors(self, provider: EmbeddingProvider) -> None:
        assert (await provider.embed(TEXTS)).vectors == (await provider.embed(TEXTS)).vectors

    async def test_shorter_vectors_on_request(self, provider: EmbeddingProvider) -> None:
        result = await provider.embed(EmbeddingRequest(model="e", inputs=("hello",), dimensions=8))

        assert len(result.vectors[0]) == 8


class TestLocalEmbedder(EmbeddingProviderContract):
    size = 64

    @pytest.fixture
    def provider(self) -> EmbeddingProvider:
        spec = ModelSpec(name="e", provider="local", upstream_model="hash", kind=ModelKind.EMBEDDING, dimensions=64)
        return LocalEmbeddingProvider(spec)


CLIENTS: dict[str, type[OpenAIBase]] = {"direct": OpenAIProvider, "sdk": OpenAISDKProvider}


@pytest.fixture(params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest) -> str:
    """The direct client or the official SDK: both must embed alike."""
    return str(request.param)


class TestOpenAIEmbeddings(EmbeddingProviderContract):
    size = 1536  # the fake's text-embedding-3-small

    @pytest.fixture
    async def provider(self, upstream: FakeUpstream, client: str) -> AsyncIterator[EmbeddingProvider]:
        adapter = CLIENTS[client](
            openai_embedding_spec(upstream), transport=openai_embedding_transport(upstream), api_key="sk-test"
        )
        yield adapter
        await adapter.aclose()


class TestAzureOpenAIEmbeddings(EmbeddingProviderContract):
    size = 1536

    @pytest.fixture
    async def provider(self, upstream: FakeUpstream) -> AsyncIterator[EmbeddingProvider]:
        spec = openai_embedding_spec(upstream, provider="azure_openai")
        transport = Transport(base_url=upstream.base_url, api_key_env="AZURE_KEY", auth="api-key")
        adapter = AzureOpenAIProvider(spec, transport=transport, api_key="azure-key")
        yield adapter
        await adapter.aclose()
        assert upstream.last_request.path == "/openai/deployments/text-embedding-3-small/embeddings"
        assert upstream.last_request.headers["api-key"] == "azure-key"


class TestGeminiEmbeddings(EmbeddingProviderContract):
    size = 3072  # the fake's gemini-embedding-001

    @pytest.fixture
    async def provider(self, upstream: FakeUpstream) -> AsyncIterator[EmbeddingProvider]:
        spec = openai_embedding_spec(upstream, provider="gemini", upstream_model="gemini-embedding-001")
        transport = Transport(base_url=f"{upstream.base_url}/v1beta", api_key_env="GEMINI_KEY")
        adapter = GeminiProvider(spec, transport=transport, api_key="gemini-key")
        yield adapter
        await adapter.aclose()
        assert upstream.last_request.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        assert upstream.last_request.headers["x-goog-api-key"] == "gemini-key"


@pytest.fixture(scope="module")
async def fake_server() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
def upstream(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.reset()
    return fake_server


def openai_embedding_spec(up: FakeUpstream, **changes: object) -> ModelSpec:
    values: dict[str, object] = {
        "name": "e",
        "provider": "openai",
        "upstream_model": "text-embedding-3-small",
        "kind": ModelKind.EMBEDDING,
    }
    return ModelSpec(**{**values, **changes})  # type: ignore[arg-type]


def openai_embedding_transport(up: FakeUpstream) -> Transport:
    return Transport(base_url=f"{up.base_url}/v1", timeout_seconds=2.0)


async def test_openai_sends_the_upstream_model_the_dimensions_and_the_user(upstream: FakeUpstream, client: str) -> None:
    adapter = CLIENTS[client](
        openai_embedding_spec(upstream, dimensions=256),
        transport=openai_embedding_transport(upstream),
        api_key="sk-test",
    )
    try:
        result = await adapter.embed(EmbeddingRequest(model="e", inputs=("a", "b"), user="u-1"))
    finally:
        await adapter.aclose()

    sent = upstream.last_request
    assert sent.path == "/v1/embeddings"
    assert sent.json == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "dimensions": 256,
        "user": "u-1",
        "encoding_format": "float",
    }
    assert [len(v) for v in result.vectors] == [256, 256]


async def test_openai_embedding_failures_are_upstream_errors(upstream: FakeUpstream, client: str) -> None:
    upstream.push(rate_limited(retry_after=3))
    adapter = CLIENTS[client](
        openai_embedding_spec(upstream), transport=openai_embedding_transport(upstream), api_key="sk-test"
    )
    try:
        with pytest.raises(UpstreamRateLimited) as raised:
            await adapter.embed(TEXTS)
    finally:
        await adapter.aclose()
    assert raised.value.retry_after_seconds == 3


async def test_the_local_embedder_refuses_more_dimensions_than_it_has() -> None:
    spec = ModelSpec(name="e", provider="local", upstream_model="hash", kind=ModelKind.EMBEDDING, dimensions=16)
    with pytest.raises(UpstreamRejected, match="at most 16"):
        await LocalEmbeddingProvider(spec).embed(EmbeddingRequest(model="e", inputs=("x",), dimensions=32))


def test_local_vectors_of_related_texts_are_closer_than_of_unrelated_ones() -> None:
    cat, cats, tax = (embed_text(t, 256) for t in ("the cat sat", "the cats sat down", "quarterly tax filing"))
    assert cosine(cat, cats) > cosine(cat, tax)
