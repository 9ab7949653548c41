"""The model catalog, read from the operator's TOML file at start-up."""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from domain.llm.model import ModelSpec
from domain.llm.ports import ModelCatalog

KNOWN_PROVIDERS = frozenset({"local", "openai", "anthropic", "openai_compatible"})
_MODEL_KEYS = frozenset(
    {
        "provider",
        "upstream_model",
        "base_url",
        "api_key_env",
        "input_usd_per_mtok",
        "output_usd_per_mtok",
        "context_window",
        "max_output_tokens",
        "timeout_seconds",
        "fallbacks",
        "description",
    }
)


class CatalogError(Exception):
    """The catalog file is unusable; the message names the file, the model and the offending key."""


class StaticModelCatalog(ModelCatalog):
    def __init__(self, models: list[ModelSpec], *, default_model: str) -> None:
        self._models = {m.name: m for m in models}
        if default_model not in self._models:
            raise CatalogError(f"default_model '{default_model}' is not a model of the catalog")
        self._default = default_model

    def list(self) -> list[ModelSpec]:
        return list(self._models.values())

    def find(self, name: str) -> ModelSpec | None:
        return self._models.get(name)

    @property
    def default_model(self) -> str:
        return self._default


def usd_per_mtok_to_micros(value: object, *, where: str) -> int:
    """Dollars per million tokens, as written by the operator, to integer micro-dollars per million tokens."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise CatalogError(f"{where}: price must be a number of US dollars") from None
    micros = amount * 1_000_000
    if amount < 0 or micros != micros.to_integral_value():
        raise CatalogError(f"{where}: price must be non-negative with at most 6 decimals")
    return int(micros)


def _spec(name: str, raw: dict[str, Any], where: str) -> ModelSpec:
    unknown = set(raw) - _MODEL_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    provider = raw.get("provider")
    if provider not in KNOWN_PROVIDERS:
        raise CatalogError(f"{where}: provider must be one of {', '.join(sorted(KNOWN_PROVIDERS))}")
    if not isinstance(raw.get("upstream_model"), str):
        raise CatalogError(f"{where}: upstream_model is required")
    try:
        return ModelSpec(
            name=name,
            provider=provider,
            upstream_model=raw["upstream_model"],
            base_url=raw.get("base_url"),
            api_key_env=raw.get("api_key_env"),
            input_price_per_mtok_micros=usd_per_mtok_to_micros(raw.get("input_usd_per_mtok", 0), where=where),
            output_price_per_mtok_micros=usd_per_mtok_to_micros(raw.get("output_usd_per_mtok", 0), where=where),
            context_window=int(raw.get("context_window", 8192)),
            max_output_tokens=int(raw.get("max_output_tokens", 1024)),
            timeout_seconds=float(raw.get("timeout_seconds", 60)),
            fallbacks=tuple(raw.get("fallbacks", ())),
            description=str(raw.get("description", "")),
        )
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"{where}: {exc}") from None


def load_catalog(path: Path) -> StaticModelCatalog:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalog file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: {exc}") from None
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise CatalogError(f"{path}: no [models.<name>] table")
    specs = [_spec(name, raw, f"{path} [models.{name}]") for name, raw in models.items()]
    names = {s.name for s in specs}
    for spec in specs:
        for fallback in spec.fallbacks:
            if fallback not in names:
                raise CatalogError(f"{path} [models.{spec.name}]: fallback '{fallback}' is not a model")
    default = data.get("default_model", specs[0].name)
    return StaticModelCatalog(specs, default_model=str(default))
