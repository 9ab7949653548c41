"""The TOML catalog: every mistake names file, line and model; A/B variants; swapping providers is a file edit."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from domain.llm.model import ChatMessage, ChatRole, CompletionRequest, ModelKind
from infrastructure.llm.catalog import CatalogError, load_catalog, parse_catalog
from infrastructure.llm.registry import build_router
from infrastructure.llm.transport import Transport
from infrastructure.settings import DEFAULT_CATALOG, Settings
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.unit

ENV = {"OPENAI_API_KEY": "sk-openai-test", "ANTHROPIC_API_KEY": "sk-anthropic-test"}
EXAMPLE = DEFAULT_CATALOG.parent / "catalog.example.toml"
HELLO = CompletionRequest(model="chat", messages=(ChatMessage(ChatRole.USER, "hello there"),))

GOOD = """\
default_model = "chat"

[models.chat]
provider = "openai"
upstream_model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
fallbacks = ["backup"]

[models.backup]
provider = "local"
upstream_model = "local-echo"
"""


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the first line containing ``fragment``."""
    return next(n for n, line in enumerate(text.splitlines(), start=1) if fragment in line)


@pytest.mark.parametrize(
    ("text", "line_with", "model", "says"),
    [
        pytest.param(
            GOOD.replace('provider = "openai"', 'provider = "openia"'),
            'provider = "openia"',
            "chat",
            "unknown provider 'openia'",
            id="unknown-provider",
        ),
        pytest.param(
            GOOD.replace('provider = "openai"', 'provider = "openai"\nclient = "curl"'),
            'client = "curl"',
            "chat",
            "unknown client 'curl': must be one of direct, sdk",
            id="unknown-client",
        ),
        pytest.param(
            GOOD.replace("OPENAI_API_KEY", "MISSING_KEY"),
            "MISSING_KEY",
            "chat",
            "environment variable MISSING_KEY (api_key_env) is not set",
            id="missing-env-var",
        ),
        pytest.param(
            GOOD.replace('api_key_env = "OPENAI_API_KEY"\n', ""),
            'provider = "openai"',
            "chat",
            "api_key_env is required for provider openai",
            id="keyed-provider-without-api-key-env",
        ),
        pytest.param(
            GOOD.replace('fallbacks = ["backup"]', 'fallbacks = ["nowhere"]'),
            "fallbacks",
            "chat",
            "fallback 'nowhere' is not a model",
            id="unknown-fallback",
        ),
        pytest.param(
            GOOD + 'fallbacks = ["chat"]\n',
            'fallbacks = ["chat"]',
            "backup",
            "fallback cycle",
            id="fallback-cycle",
        ),
        pytest.param(
            GOOD + 'fallbacks = ["backup"]  # itself\n',
            "# itself",
            "backup",
            "fallback cycle backup -> backup",
            id="self-fallback",
        ),
        pytest.param(
            GOOD + "input_usd_per_mtok = -1\n",
            "input_usd_per_mtok",
            "backup",
            "price must be non-negative",
            id="negative-price",
        ),
        pytest.param(
            GOOD + 'output_usd_per_mtok = "cheap"\n',
            "output_usd_per_mtok",
            "backup",
            "price must be a number",
            id="price-not-a-number",
        ),
        pytest.param(
            GOOD + "input_usd_per_mtok = 0.0000001\n",
            "input_usd_per_mtok",
            "backup",
            "at most 6 decimals",
            id="price-too-precise",
        ),
        pytest.param(
            GOOD + "temprature = 1\n",
            "temprature",
            "backup",
            "unknown key(s) temprature",
            id="unknown-key",
        ),
        pytest.param(
            GOOD + "max_output_tokens = 0\n",
            "max_output_tokens",
            "backup",
            "max_output_tokens must be an integer of at least 1",
            id="bad-limit",
        ),
        pytest.param(
            GOOD.replace('provider = "openai"', 'provider = "openai_compatible"').replace(
                'api_key_env = "OPENAI_API_KEY"\n', ""
            ),
            'provider = "openai_compatible"',
            "chat",
            "base_url is required",
            id="compatible-without-base-url",
        ),
        pytest.param(
            GOOD + 'base_url = "localhost:8000"\n',
            "base_url",
            "backup",
            "base_url must start with http",
            id="base-url-without-scheme",
        ),
        pytest.param(
            GOOD + "deadline_seconds = 0\n",
            "deadline_seconds",
            "backup",
            "deadline_seconds must be a number of seconds above 0",
            id="bad-deadline",
        ),
        pytest.param(
            GOOD.replace('upstream_model = "gpt-4o-mini"\n', ""),
            "[models.chat]",
            "chat",
            "upstream_model is required",
            id="missing-upstream-model",
        ),
    ],
)
def test_every_error_names_the_file_the_line_and_the_model(text: str, line_with: str, model: str, says: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, source="catalog.toml", env=ENV)

    message = str(caught.value)
    assert message.startswith(f"catalog.toml:{line_of(text, line_with)}: model '{model}': "), message
    assert says in message


CHAT_TABLE = """\
[models.chat]
provider = "local"
upstream_model = "local-echo"
"""
EMBED_TABLE = """\
[models.embed]
kind = "embedding"
provider = "local"
upstream_model = "hash"
dimensions = 128
"""
EMBEDDING = CHAT_TABLE + "\n" + EMBED_TABLE


def test_embedding_models_are_told_apart_from_chat_models() -> None:
    catalog = parse_catalog(EMBEDDING, env={})

    embed = catalog.find("embed")
    chat = catalog.find("chat")
    assert embed is not None
    assert chat is not None
    assert (embed.kind, embed.dimensions) == (ModelKind.EMBEDDING, 128)
    assert (chat.kind, chat.dimensions) == (ModelKind.CHAT, None)
    assert catalog.default_model == "chat"
    # Even listed first, an embedding model is never the default.
    assert parse_catalog(EMBED_TABLE + "\n" + CHAT_TABLE, env={}).default_model == "chat"


@pytest.mark.parametrize(
    ("change", "line_with", "model", "says"),
    [
        pytest.param(
            ('kind = "embedding"', 'kind = "vision"'), "vision", "embed", "kind must be one of", id="bad-kind"
        ),
        pytest.param(
            ('upstream_model = "local-echo"', 'upstream_model = "local-echo"\ndimensions = 3'),
            "dimensions = 3",
            "chat",
            "dimensions is for embedding models",
            id="dimensions-on-chat",
        ),
        pytest.param(
            (
                'provider = "local"\nupstream_model = "hash"',
                'provider = "anthropic"\nupstream_model = "hash"\napi_key_env = "ANTHROPIC_API_KEY"\nfree = true',
            ),
            'provider = "anthropic"',
            "embed",
            "provider anthropic has no embeddings",
            id="anthropic-embeddings",
        ),
        pytest.param(("dimensions = 128\n", ""), "kind", "embed", "needs its vector size", id="no-dimensions"),
        pytest.param(("dimensions = 128", "dimensions = 0"), "dimensions", "embed", "at least 1", id="zero-dimensions"),
        pytest.param(
            ("dimensions = 128", 'dimensions = 128\nfallbacks = ["chat"]'),
            "fallbacks",
            "embed",
            "cannot have fallbacks",
            id="embedding-fallbacks",
        ),
        pytest.param(
            ('upstream_model = "local-echo"', 'upstream_model = "local-echo"\nfallbacks = ["embed"]'),
            "fallbacks",
            "chat",
            "fallback 'embed' is not a chat model",
            id="chat-falls-back-to-embedding",
        ),
    ],
)
def test_embedding_model_errors(change: tuple[str, str], line_with: str, model: str, says: str) -> None:
    text = EMBEDDING.replace(*change)

    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, source="c.toml", env=ENV)

    message = str(caught.value)
    assert message.startswith(f"c.toml:{line_of(text, line_with)}: model '{model}': "), message
    assert says in message


def test_the_default_model_must_be_a_chat_model() -> None:
    with pytest.raises(CatalogError, match="default_model 'embed' is an embedding model"):
        parse_catalog('default_model = "embed"\n' + EMBEDDING, source="c.toml", env={})
    with pytest.raises(CatalogError, match="no chat model"):
        parse_catalog(EMBED_TABLE, source="c.toml", env={})


VARIANTS = """\
[models.chat]
fallbacks = ["backup"]
context_window = 16000
max_output_tokens = 500

[[models.chat.variants]]
label = "a"
weight = 90
provider = "local"
upstream_model = "echo-a"
input_usd_per_mtok = 1

[[models.chat.variants]]
label = "b"
weight = 10
provider = "local"
upstream_model = "echo-b"
input_usd_per_mtok = 2
max_output_tokens = 200

[models.backup]
provider = "local"
upstream_model = "local-echo"
"""


@pytest.mark.parametrize(
    ("change", "line_with", "says"),
    [
        pytest.param(
            ('label = "b"', 'label = "a"  # again'), "# again", "label 'a' is used twice", id="duplicate-label"
        ),
        pytest.param(("weight = 10", "weight = -1"), "weight = -1", "weight must be an integer", id="bad-weight"),
        pytest.param(
            ("weight = 10", "weight = 10\ndeadline_seconds = 5"),
            "deadline_seconds",
            "unknown key(s) in variant: deadline_seconds",
            id="deadline-of-a-variant",  # a call's deadline is its model's, whichever variant answers
        ),
        pytest.param(('upstream_model = "echo-b"', "flavour = 2"), "flavour", "unknown key(s)", id="unknown-key"),
        pytest.param(
            ('provider = "local"\nupstream_model = "echo-b"', 'provider = "anthropic"\nupstream_model = "echo-b"'),
            'provider = "anthropic"',
            "api_key_env is required",
            id="variant-provider",
        ),
    ],
)
def test_variant_errors_point_at_the_variant(change: tuple[str, str], line_with: str, says: str) -> None:
    text = VARIANTS.replace(*change)

    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, source="c.toml", env={})

    message = str(caught.value)
    assert message.startswith(f"c.toml:{line_of(text, line_with)}: model 'chat': "), message
    assert says in message


def test_a_file_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(GOOD.replace("OPENAI_API_KEY", "NOT_SET_ANYWHERE"), encoding="utf-8")

    with pytest.raises(CatalogError, match=rf"^{path}:6: model 'chat': "):
        load_catalog(path, env={})


def test_the_default_catalog_needs_no_key_and_the_example_needs_its_keys() -> None:
    default = load_catalog(DEFAULT_CATALOG, env={}).list()
    assert [(m.provider, m.kind) for m in default] == [("local", ModelKind.CHAT), ("local", ModelKind.EMBEDDING)]

    example = load_catalog(EXAMPLE, env=ENV)
    assert {m.provider for m in example.list()} == {"openai", "anthropic", "openai_compatible", "ollama", "local"}
    with pytest.raises(CatalogError, match=r"catalog\.example\.toml:\d+: model 'gpt-main': .*OPENAI_API_KEY"):
        load_catalog(EXAMPLE, env={"ANTHROPIC_API_KEY": "x"})


def test_a_model_with_variants_lists_them_and_stays_meaningful() -> None:
    chat = parse_catalog(VARIANTS, env={}).find("chat")

    assert chat is not None
    assert [(v.variant, v.weight, v.upstream_model) for v in chat.variants] == [
        ("a", 90, "echo-a"),
        ("b", 10, "echo-b"),
    ]
    assert (chat.provider, chat.upstream_model, chat.variant) == ("local", "echo-a", None)  # the heaviest variant
    assert chat.max_output_tokens == 200  # what holds whichever variant answers
    assert chat.context_window == 16000  # inherited from the model's table
    assert chat.deployment("b").input_price_per_mtok_micros == 2_000_000
    assert chat.fallbacks == ("backup",)


def test_how_a_deployment_is_reached_is_kept_beside_its_spec_not_in_it() -> None:
    text = GOOD.replace(
        'api_key_env = "OPENAI_API_KEY"', 'api_key_env = "OPENAI_API_KEY"\nbase_url = "https://llm.example.com/v1"'
    )
    catalog = parse_catalog(text + 'timeout_seconds = 7\nclient = "sdk"\n', env=ENV)

    assert catalog.transport("chat") == Transport(
        base_url="https://llm.example.com/v1", api_key_env="OPENAI_API_KEY", timeout_seconds=60.0
    )
    assert catalog.transport("backup") == Transport(timeout_seconds=7.0, client="sdk")
    assert not any(hasattr(spec, "base_url") or hasattr(spec, "api_key_env") for spec in catalog.list())


def test_a_variant_inherits_its_models_transport_and_may_override_it() -> None:
    text = VARIANTS.replace("[models.chat]\n", "[models.chat]\ntimeout_seconds = 4\n").replace(
        "max_output_tokens = 200", "max_output_tokens = 200\ntimeout_seconds = 9"
    )
    catalog = parse_catalog(text, env={})

    assert (catalog.transport("chat", "a").timeout_seconds, catalog.transport("chat", "b").timeout_seconds) == (4, 9)
    assert catalog.deadline_seconds("chat") == 2 * 9  # twice the longest timeout of its deployments


def test_a_models_deadline_is_twice_its_timeout_unless_it_says_otherwise() -> None:
    text = GOOD.replace("fallbacks = [", "timeout_seconds = 3\ndeadline_seconds = 4.5\nfallbacks = [")
    catalog = parse_catalog(text + "timeout_seconds = 3\n", env=ENV)

    assert catalog.deadline_seconds("chat") == 4.5
    assert catalog.deadline_seconds("backup") == 6.0
    assert parse_catalog(GOOD, env=ENV).deadline_seconds("backup") == 120.0  # the default timeout is 60 s


def test_api_keys_stay_out_of_the_catalog() -> None:
    catalog = parse_catalog(GOOD, env=ENV)

    assert "sk-openai-test" not in repr(catalog.list())


async def test_a_b_weights_split_the_traffic_as_configured() -> None:
    catalog = parse_catalog(VARIANTS, env={})
    router = build_router(catalog, Settings(), {}, rng=random.Random(2024))

    served = Counter([(await router.complete(HELLO)).served_by.variant for _ in range(2000)])

    assert set(served) == {"a", "b"}
    assert 0.87 < served["a"] / 2000 < 0.93


async def test_a_b_variants_stream_too_and_say_which_answered() -> None:
    catalog = parse_catalog(VARIANTS.replace("weight = 90", "weight = 0"), env={})
    router = build_router(catalog, Settings(), {})

    events = [event async for event in await router.open_stream(HELLO)]

    end = events[-1].completion  # type: ignore[union-attr]
    assert (end.served_by.model, end.served_by.variant, end.served_by.upstream_model) == ("chat", "b", "echo-b")


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


def one_model(up: FakeUpstream, provider: str) -> str:
    table = {
        "openai": f'provider = "openai"\nupstream_model = "gpt-4o-mini"\nbase_url = "{up.base_url}/v1"\n'
        'api_key_env = "OPENAI_API_KEY"\n',
        "anthropic": f'provider = "anthropic"\nupstream_model = "claude-haiku-4-5"\nbase_url = "{up.base_url}"\n'
        'api_key_env = "ANTHROPIC_API_KEY"\n',
    }[provider]
    return f'default_model = "chat"\n\n[models.chat]\n{table}input_usd_per_mtok = 1\n'


@pytest.mark.parametrize(
    ("provider", "endpoint", "key"),
    [("openai", "/v1/chat/completions", "sk-openai-test"), ("anthropic", "/v1/messages", "sk-anthropic-test")],
)
async def test_swapping_a_model_between_providers_is_an_edit_of_the_file(
    upstream: FakeUpstream, provider: str, endpoint: str, key: str
) -> None:
    upstream.reset()
    router = build_router(parse_catalog(one_model(upstream, provider), env=ENV), Settings(), ENV)
    try:
        completion = await router.complete(HELLO)
    finally:
        await router.aclose()

    assert completion.served_by.provider == provider
    assert [r.path for r in upstream.requests] == [endpoint]
    assert upstream.last_request.api_key == key
