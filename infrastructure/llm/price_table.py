"""The price and limits table shipped with Switchboard (``price_table.toml``, its date and sources in the file): the
catalog keys each known upstream model defaults to, by provider and model id.

A catalog entry is read as the table's row overlaid with what the entry sets, so an explicit price or limit wins.
Every row is checked when the table loads (a bad price is a ``CatalogError`` naming the row), so a typo in the data
stops start-up like a typo in the catalog.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infrastructure.llm.catalog_fields import CatalogError
from infrastructure.llm.catalog_prices import usd_per_mtok_to_micros

PRICE_TABLE = Path(__file__).with_name("price_table.toml")
PRICE_KEYS = frozenset(
    {
        "input_usd_per_mtok",
        "output_usd_per_mtok",
        "cached_input_usd_per_mtok",
        "cache_write_usd_per_mtok",
        "batch_input_usd_per_mtok",
        "batch_output_usd_per_mtok",
    }
)
LIMIT_KEYS = frozenset({"context_window", "max_output_tokens"})
BILLED_KEYS = frozenset({"input_usd_per_mtok", "output_usd_per_mtok"})  # what makes an entry priced
_FAMILY = {"azure_openai": "openai"}  # providers priced as another


class PriceTable:
    """The rows of the table, by provider and upstream model id."""

    def __init__(self, rows: Mapping[str, Mapping[str, Mapping[str, Any]]], *, as_of: str, source: str) -> None:
        self._rows = rows
        self.as_of = as_of
        self.source = source

    def defaults(self, provider: str, upstream_model: str) -> Mapping[str, Any]:
        """The catalog keys the table holds for this model (empty when it does not know it), batch prices
        included (batch lines are billed at them)."""
        return dict(self._rows.get(_FAMILY.get(provider, provider), {}).get(upstream_model, {}))


def _check_row(where: str, row: object) -> None:
    if not isinstance(row, dict):
        raise CatalogError(f"{where}: must be a table")
    for key, value in row.items():
        if key in PRICE_KEYS:
            usd_per_mtok_to_micros(value, where=f"{where}.{key}")
        elif key in LIMIT_KEYS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CatalogError(f"{where}.{key}: must be a positive integer")
        else:
            raise CatalogError(f"{where}: unknown key {key}")


def parse_price_table(text: str, *, source: str = "<price table>") -> PriceTable:
    data = tomllib.loads(text)
    meta = data.pop("meta", {})
    if not isinstance(meta.get("as_of"), str) or not isinstance(meta.get("source"), str):
        raise CatalogError(f"{source}: [meta] needs as_of and source")
    for provider, rows in data.items():
        if not isinstance(rows, dict):
            raise CatalogError(f"{source}: {provider} must be a table of models")
        for model, row in rows.items():
            _check_row(f"{source}: {provider}.{model}", row)
    return PriceTable(data, as_of=meta["as_of"], source=meta["source"])


@functools.cache
def price_table() -> PriceTable:
    """The shipped table, read once."""
    return parse_price_table(PRICE_TABLE.read_text(encoding="utf-8"), source=str(PRICE_TABLE))
