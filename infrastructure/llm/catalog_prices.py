"""Prices in the catalog file: US dollars per million tokens as the operator writes them, integer micro-dollars
per million tokens as Switchboard bills them.

A deployment's input and output prices default to 0; its prompt-cache prices (``cached_input_usd_per_mtok`` for
cache reads, ``cache_write_usd_per_mtok`` for cache writes) to the input price, except on Anthropic, whose published
multipliers of the input price apply when the catalog leaves them out: a read costs a tenth, a (5-minute) write
1.25 times the input price.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from infrastructure.llm.catalog_fields import CatalogError, Place

ANTHROPIC_CACHE_READ = Decimal("0.1")
ANTHROPIC_CACHE_WRITE = Decimal("1.25")


def usd_per_mtok_to_micros(value: object, *, where: str) -> int:
    """Dollars per million tokens, as written by the operator, to integer micro-dollars per million tokens."""
    if isinstance(value, bool):
        raise CatalogError(f"{where}: price must be a number of US dollars")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise CatalogError(f"{where}: price must be a number of US dollars") from None
    micros = amount * 1_000_000
    if not amount.is_finite() or amount < 0 or micros != micros.to_integral_value():
        raise CatalogError(f"{where}: price must be non-negative with at most 6 decimals")
    return int(micros)


def price(raw: Mapping[str, Any], key: str, where: Place) -> int:
    try:
        return usd_per_mtok_to_micros(raw.get(key, 0), where=key)
    except CatalogError as exc:
        raise where.error(str(exc), key) from None


def cache_prices(
    provider: str, raw: Mapping[str, Any], where: Place, input_price: int
) -> tuple[int | None, int | None]:
    """The cache read and write prices of a deployment (``None``: billed at the input price)."""
    read = price(raw, "cached_input_usd_per_mtok", where) if "cached_input_usd_per_mtok" in raw else None
    write = price(raw, "cache_write_usd_per_mtok", where) if "cache_write_usd_per_mtok" in raw else None
    if provider == "anthropic":
        read = _scaled(input_price, ANTHROPIC_CACHE_READ) if read is None else read
        write = _scaled(input_price, ANTHROPIC_CACHE_WRITE) if write is None else write
    return read, write


def _scaled(micros: int, factor: Decimal) -> int:
    """``micros`` times ``factor``, rounded up to a whole micro-dollar (never under-charging)."""
    return int(-(-(micros * factor) // 1))


def optional_price(raw: Mapping[str, Any], key: str, where: Place) -> int | None:
    return price(raw, key, where) if key in raw else None


def batch_discount(raw: Mapping[str, Any], where: Place) -> int:
    """``batch_discount_percent``: a whole percentage off every price for batch lines (0 to 100)."""
    value = raw.get("batch_discount_percent", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise where.error("batch_discount_percent must be a whole number from 0 to 100", "batch_discount_percent")
    return value
