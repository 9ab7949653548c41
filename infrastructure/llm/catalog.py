"""The model catalog, read from the operator's TOML file at start-up.

Every mistake stops start-up with a message naming the file, the line and the model: an unknown provider or key, a
missing API-key variable, a fallback to a model that does not exist, a fallback cycle, a bad price or limit, a
model priced nowhere (prices and limits left out come from ``price_table``; ``free = true`` allows none). API keys
never live in the file: a model names the environment variable that holds its key (``api_key_env``).

Each deployment's table holds the domain's ``ModelSpec`` (what the model is and costs) and its ``Transport`` (how it
is reached: ``infrastructure.llm.transport``); the catalog keeps both, and each model's total ``deadline_seconds``.

A public model is served by one deployment, or split between weighted A/B ``[[models.<name>.variants]]``; a variant
inherits every key of its model's table and overrides what it sets.

A model is a chat model unless it says ``kind = "embedding"``. An embedding model (provider ``local``, ``openai`` or
``openai_compatible``) has no fallbacks and no variants (vectors of two models are not comparable); it may fix its
vector size with ``dimensions`` (the ``local`` embedder needs one). The default model is a chat model, and a chat
model falls back only to chat models.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from domain.llm.model import ModelKind, ModelSpec
from domain.llm.ports import ModelCatalog
from infrastructure.llm.catalog_fields import CatalogError, Place, optional_str, positive_int
from infrastructure.llm.catalog_prices import (
    batch_discount,
    cache_prices,
    optional_price,
    price,
    usd_per_mtok_to_micros,
)
from infrastructure.llm.presets import PRESETS
from infrastructure.llm.price_table import BILLED_KEYS, price_table
from infrastructure.llm.toml_positions import TomlPositions
from infrastructure.llm.transport import (
    TRANSPORT_KEYS,
    Transport,
    default_deadline,
    parse_deadline,
    parse_transport,
)

__all__ = ["CatalogError", "StaticModelCatalog", "load_catalog", "parse_catalog", "usd_per_mtok_to_micros"]

KNOWN_PROVIDERS = frozenset(
    {"local", "openai", "anthropic", "openai_compatible", "azure_openai", "gemini", "bedrock", *PRESETS}
)
EMBEDDING_PROVIDERS = frozenset(
    {"local", "openai", "openai_compatible", "azure_openai", "gemini", *(n for n, p in PRESETS.items() if p.embeddings)}
)
MAX_DIMENSIONS = 16_384
_DEPLOYMENT_KEYS = TRANSPORT_KEYS | {
    "provider",
    "upstream_model",
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "cached_input_usd_per_mtok",
    "cache_write_usd_per_mtok",
    "batch_input_usd_per_mtok",
    "batch_output_usd_per_mtok",
    "batch_discount_percent",
    "context_window",
    "max_output_tokens",
    "description",
    "free",
}
_MODEL_KEYS = _DEPLOYMENT_KEYS | {"fallbacks", "variants", "kind", "dimensions", "deadline_seconds"}
_VARIANT_KEYS = _DEPLOYMENT_KEYS | {"label", "weight"}
_LABEL = re.compile(r"[A-Za-z0-9_.-]+")
Transports = dict[str | None, Transport]  # one model's, by variant label (None: the model without variants)


class StaticModelCatalog(ModelCatalog):
    """The models of the catalog file, with how each deployment is reached and each model's deadline (a model
    declared without them gets a default ``Transport`` and a deadline of its timeouts)."""

    def __init__(
        self,
        models: list[ModelSpec],
        *,
        default_model: str,
        transports: Mapping[str, Transports] | None = None,
        deadlines: Mapping[str, float] | None = None,
    ) -> None:
        self._models = {m.name: m for m in models}
        if default_model not in self._models:
            raise CatalogError(f"default_model '{default_model}' is not a model of the catalog")
        self._default = default_model
        self._transports = dict(transports or {})
        self._deadlines = dict(deadlines or {})

    def list(self) -> list[ModelSpec]:
        return list(self._models.values())

    def find(self, name: str) -> ModelSpec | None:
        return self._models.get(name)

    @property
    def default_model(self) -> str:
        return self._default

    def transport(self, model: str, variant: str | None = None) -> Transport:
        """How deployment ``variant`` of ``model`` is reached."""
        return self._transports.get(model, {}).get(variant) or Transport()

    def deadline_seconds(self, model: str) -> float:
        """The total time a call of ``model`` may take, retries and fallbacks included."""
        deadline = self._deadlines.get(model)
        if deadline is not None:
            return deadline
        spec = self._models[model]
        return default_deadline(self.transport(model, d.variant) for d in spec.deployments)


def _deployment(raw: Mapping[str, Any], where: Place, env: Mapping[str, str]) -> tuple[ModelSpec, Transport]:
    provider = raw.get("provider")
    if provider not in KNOWN_PROVIDERS:
        known = ", ".join(sorted(KNOWN_PROVIDERS))
        raise where.error(f"unknown provider {provider!r}: must be one of {known}", "provider")
    upstream_model = optional_str(raw, "upstream_model", where)
    if upstream_model is None:
        raise where.error("upstream_model is required")
    table = dict(price_table().defaults(provider, upstream_model))
    if BILLED_KEYS & set(raw):  # the catalog's own prices: the table's batch prices are for the table's
        table = {key: value for key, value in table.items() if not key.startswith("batch_")}
    raw = {**table, **raw}  # what the catalog sets wins
    transport = parse_transport(provider, raw, where, env)
    _check_priced(provider, raw, where)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise where.error("description must be a string", "description")
    input_price = price(raw, "input_usd_per_mtok", where)
    cache_read, cache_write = cache_prices(provider, raw, where, input_price)
    spec = ModelSpec(
        name=where.model,
        provider=provider,
        upstream_model=upstream_model,
        input_price_per_mtok_micros=input_price,
        output_price_per_mtok_micros=price(raw, "output_usd_per_mtok", where),
        cached_input_price_per_mtok_micros=cache_read,
        cache_write_price_per_mtok_micros=cache_write,
        batch_input_price_per_mtok_micros=optional_price(raw, "batch_input_usd_per_mtok", where),
        batch_output_price_per_mtok_micros=optional_price(raw, "batch_output_usd_per_mtok", where),
        batch_discount_percent=batch_discount(raw, where),
        context_window=positive_int(raw, "context_window", 8192, where),
        max_output_tokens=positive_int(raw, "max_output_tokens", 1024, where),
        description=description,
    )
    return spec, transport


def _check_priced(provider: str, raw: Mapping[str, Any], where: Place) -> None:
    """Nothing is billed at zero by accident: a model priced neither by the catalog nor by the price table must
    say ``free = true`` (the in-process ``local`` provider is free by nature)."""
    free = raw.get("free", False)
    if not isinstance(free, bool):
        raise where.error("free must be true or false", "free")
    if free or provider == "local" or BILLED_KEYS & set(raw):
        return
    raise where.error(
        f"no price for {raw['upstream_model']!r} in the catalog or the price table: set input_usd_per_mtok and "
        "output_usd_per_mtok, or free = true",
        "upstream_model",
    )


def _variants(raw: Mapping[str, Any], where: Place, env: Mapping[str, str]) -> tuple[ModelSpec, Transports]:
    tables = raw["variants"]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise where.error("variants must be one or more [[models.<name>.variants]] tables", "variants")
    inherited = {k: v for k, v in raw.items() if k in _DEPLOYMENT_KEYS}
    specs: list[ModelSpec] = []
    transports: Transports = {}
    for index, table in enumerate(tables):
        at = replace(where, tables=((*where.tables[0], "variants", index), *where.tables))
        unknown = set(table) - _VARIANT_KEYS
        if unknown:
            raise at.error(f"unknown key(s) in variant: {', '.join(sorted(unknown))}", sorted(unknown)[0])
        label = table.get("label")
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise at.error("a variant needs a label of letters, digits, '.', '_' or '-'", "label")
        if any(s.variant == label for s in specs):
            raise at.error(f"variant label '{label}' is used twice", "label")
        weight = positive_int(table, "weight", 1, at, minimum=0)
        spec, transports[label] = _deployment({**inherited, **table}, at, env)
        specs.append(replace(spec, variant=label, weight=weight))
    if sum(s.weight for s in specs) == 0:
        raise where.error("the weights of its variants add up to 0", "variants")
    primary = max(specs, key=lambda s: s.weight)
    model = replace(
        primary,
        variant=None,
        weight=1,
        variants=tuple(specs),
        context_window=min(s.context_window for s in specs),
        max_output_tokens=min(s.max_output_tokens for s in specs),
        description=str(raw.get("description", primary.description)),
    )
    return model, transports


def _model(name: str, raw: object, where: Place, env: Mapping[str, str]) -> tuple[ModelSpec, Transports, float]:
    """The model's spec, the transport of each of its deployments, and its deadline."""
    if not isinstance(raw, dict):
        raise where.error("must be a table")
    if "#" in name:
        raise where.error("a model name may not contain '#'")
    unknown = set(raw) - _MODEL_KEYS
    if unknown:
        raise where.error(f"unknown key(s) {', '.join(sorted(unknown))}", sorted(unknown)[0])
    fallbacks = raw.get("fallbacks", [])
    if not isinstance(fallbacks, list) or not all(isinstance(f, str) for f in fallbacks):
        raise where.error("fallbacks must be a list of model names", "fallbacks")
    if "variants" in raw:
        spec, transports = _variants(raw, where, env)
    else:
        spec, transport = _deployment(raw, where, env)
        transports = {None: transport}
    spec = replace(spec, fallbacks=tuple(fallbacks))
    return _kind(spec, raw, where), transports, parse_deadline(raw, where, transports.values())


def _kind(spec: ModelSpec, raw: Mapping[str, Any], where: Place) -> ModelSpec:
    kind = raw.get("kind", ModelKind.CHAT.value)
    if kind not in {k.value for k in ModelKind}:
        raise where.error(f"kind must be one of {', '.join(k.value for k in ModelKind)}", "kind")
    dimensions = raw.get("dimensions")
    if kind == ModelKind.CHAT:
        if dimensions is not None:
            raise where.error('dimensions is for embedding models (kind = "embedding")', "dimensions")
        return spec
    if spec.provider not in EMBEDDING_PROVIDERS:
        known = ", ".join(sorted(EMBEDDING_PROVIDERS))
        raise where.error(f"provider {spec.provider} has no embeddings: must be one of {known}", "provider")
    if spec.variants:
        raise where.error("an embedding model cannot have variants (their vectors would not compare)", "variants")
    if spec.fallbacks:
        raise where.error("an embedding model cannot have fallbacks (their vectors would not compare)", "fallbacks")
    if dimensions is not None:
        dimensions = positive_int(raw, "dimensions", 0, where)
        if dimensions > MAX_DIMENSIONS:
            raise where.error(f"dimensions must be at most {MAX_DIMENSIONS}", "dimensions")
    elif spec.provider == "local":
        raise where.error("the local embedder needs its vector size: set dimensions", "kind")
    return replace(spec, kind=ModelKind.EMBEDDING, dimensions=dimensions)


def _check_fallbacks(specs: dict[str, ModelSpec], where: dict[str, Place]) -> None:
    for spec in specs.values():
        for fallback in spec.fallbacks:
            if fallback not in specs:
                raise where[spec.name].error(f"fallback '{fallback}' is not a model of the catalog", "fallbacks")
            if specs[fallback].kind is not spec.kind:
                raise where[spec.name].error(f"fallback '{fallback}' is not a {spec.kind} model", "fallbacks")
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise where[path[-1]].error(f"fallback cycle {cycle}", "fallbacks")
        if name in done:
            return
        for fallback in specs[name].fallbacks:
            visit(fallback, [*path, name])
        done.add(name)

    for name in specs:
        visit(name, [])


def parse_catalog(text: str, *, source: str = "<catalog>", env: Mapping[str, str] | None = None) -> StaticModelCatalog:
    """Builds the catalog from TOML text; ``env`` (default: the process environment) must hold every named key."""
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: {exc}") from None
    positions = TomlPositions(text)
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise CatalogError(f"{source}:1: no [models.<name>] table")
    unknown = set(data) - {"models", "default_model"}
    if unknown:
        key = sorted(unknown)[0]
        raise CatalogError(f"{source}:{positions.line_of(key)}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    wheres = {name: Place(source, positions, name, (("models", name),)) for name in models}
    parsed = {name: _model(name, raw, wheres[name], env) for name, raw in models.items()}
    specs = {name: spec for name, (spec, _, _) in parsed.items()}
    _check_fallbacks(specs, wheres)
    chat_models = [name for name, spec in specs.items() if spec.kind is ModelKind.CHAT]
    if not chat_models:
        raise CatalogError(f'{source}:1: no chat model (every model has kind = "embedding")')
    default = data.get("default_model", chat_models[0])
    if default not in specs:
        line = positions.line_of("default_model")
        raise CatalogError(f"{source}:{line}: default_model '{default}' is not a model of the catalog")
    if default not in chat_models:
        line = positions.line_of("default_model")
        raise CatalogError(f"{source}:{line}: default_model '{default}' is an embedding model, not a chat model")
    return StaticModelCatalog(
        list(specs.values()),
        default_model=default,
        transports={name: transports for name, (_, transports, _) in parsed.items()},
        deadlines={name: deadline for name, (_, _, deadline) in parsed.items()},
    )


def load_catalog(path: Path, *, env: Mapping[str, str] | None = None) -> StaticModelCatalog:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalog file not found") from None
    return parse_catalog(text, source=str(path), env=env)
