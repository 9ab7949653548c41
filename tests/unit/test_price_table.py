"""The shipped price and limits table: a catalog entry with only ``provider`` and ``upstream_model`` of a known model
bills correctly, an explicit catalog value wins, and a model priced nowhere is refused unless it says it is free."""

from __future__ import annotations

from typing import Any

import pytest

from domain.llm.model import TokenUsage
from domain.usage.model import cost_micros
from infrastructure.llm.catalog import CatalogError, parse_catalog
from infrastructure.llm.price_table import parse_price_table, price_table

pytestmark = pytest.mark.unit

ENV = {"K": "key"}


def one(table: str, name: str = "m") -> str:
    return f'[models.{name}]\napi_key_env = "K"\n{table}'


def test_a_known_model_needs_only_its_provider_and_upstream_model() -> None:
    catalog = parse_catalog(one('provider = "anthropic"\nupstream_model = "claude-haiku-4-5"\n'), env=ENV)
    spec = catalog.find("m")
    assert spec is not None
    assert (spec.input_price_per_mtok_micros, spec.output_price_per_mtok_micros) == (1_000_000, 5_000_000)
    assert (spec.cached_input_price_per_mtok_micros, spec.cache_write_price_per_mtok_micros) == (100_000, 1_250_000)
    assert (spec.context_window, spec.max_output_tokens) == (200_000, 64_000)
    # 2,000 plain prompt tokens, 10,000 read from the cache, 1,000 written to it, 500 out.
    usage = TokenUsage(input_tokens=13_000, output_tokens=500, cached_tokens=10_000, cache_write_tokens=1_000)
    assert cost_micros(usage, spec) == 2_000 * 1 + 10_000 // 10 + 1_000 * 5 // 4 + 500 * 5


def test_an_explicit_catalog_value_wins_and_the_rest_comes_from_the_table() -> None:
    text = one(
        'provider = "openai"\nupstream_model = "gpt-4o-mini"\ninput_usd_per_mtok = 0.2\nmax_output_tokens = 99\n'
    )
    spec = parse_catalog(text, env=ENV).find("m")
    assert spec is not None
    assert (spec.input_price_per_mtok_micros, spec.output_price_per_mtok_micros) == (200_000, 600_000)
    assert (spec.cached_input_price_per_mtok_micros, spec.max_output_tokens) == (75_000, 99)


def test_azure_openai_deployments_are_priced_as_openais_models() -> None:
    text = one('provider = "azure_openai"\nupstream_model = "gpt-4o"\nbase_url = "https://r.openai.azure.com"\n')
    spec = parse_catalog(text, env=ENV).find("m")
    assert spec is not None
    assert spec.input_price_per_mtok_micros == 2_500_000


def test_a_model_priced_nowhere_is_refused_unless_free_or_priced_at_zero() -> None:
    unknown = one('provider = "openai"\nupstream_model = "my-fine-tune"\n')
    with pytest.raises(CatalogError, match=r"<catalog>:4: model 'm': no price for 'my-fine-tune'.*free = true"):
        parse_catalog(unknown, env=ENV)
    for allowed in ("free = true\n", "input_usd_per_mtok = 0\noutput_usd_per_mtok = 0\n"):
        spec = parse_catalog(unknown + allowed, env=ENV).find("m")
        assert spec is not None
        assert spec.input_price_per_mtok_micros == 0
    with pytest.raises(CatalogError, match="free must be true or false"):
        parse_catalog(unknown + 'free = "yes"\n', env=ENV)


def test_the_shipped_table_says_when_and_where_its_prices_come_from() -> None:
    table = price_table()
    assert table.as_of
    assert "pricing" in table.source
    assert table.defaults("gemini", "gemini-2.5-flash")["output_usd_per_mtok"] == 2.50
    assert table.defaults("openai", "gpt-4o")["batch_input_usd_per_mtok"] == 1.25  # billed to batch lines
    assert table.defaults("openai", "no-such-model") == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[openai.x]\ninput_usd_per_mtok = 1\n", r"\[meta\] needs as_of and source"),
        ('[meta]\nas_of = "d"\nsource = "s"\n[openai.x]\ninput_usd_per_mtok = -1\n', "non-negative"),
        ('[meta]\nas_of = "d"\nsource = "s"\n[openai.x]\ncontext_window = 0\n', "positive integer"),
        ('[meta]\nas_of = "d"\nsource = "s"\n[openai.x]\nprice = 1\n', "unknown key price"),
    ],
)
def test_a_bad_row_of_the_table_is_refused(text: str, says: str) -> None:
    with pytest.raises(CatalogError, match=says):
        parse_price_table(text)


def test_batch_prices_come_from_the_catalog_or_the_table() -> None:
    def spec(entry: str) -> Any:
        found = parse_catalog(f'default_model = "m"\n[models.m]\n{entry}', env=ENV).find("m")
        assert found is not None
        return found

    table = spec('provider = "openai"\nupstream_model = "gpt-4o-mini"\napi_key_env = "K"\n')
    assert (table.batch_input_price_per_mtok_micros, table.batch_output_price_per_mtok_micros) == (75_000, 300_000)
    assert table.batch_priced().input_price_per_mtok_micros == 75_000
    own = spec('provider = "openai"\nupstream_model = "gpt-4o-mini"\napi_key_env = "K"\ninput_usd_per_mtok = 1\n')
    assert not own.has_batch_price  # the catalog's own price: the table's batch price is not for it
    discounted = spec(
        'provider = "openai"\nupstream_model = "x"\napi_key_env = "K"\ninput_usd_per_mtok = 1\n'
        "output_usd_per_mtok = 3\nbatch_discount_percent = 50\n"
    )
    assert (
        discounted.batch_priced().input_price_per_mtok_micros,
        discounted.batch_priced().output_price_per_mtok_micros,
    ) == (
        500_000,
        1_500_000,
    )
    with pytest.raises(CatalogError, match="batch_discount_percent"):
        spec('provider = "local"\nupstream_model = "local-echo"\nbatch_discount_percent = 150\n')
