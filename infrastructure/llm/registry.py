"""Builds the router: one provider per catalog deployment, by provider kind and its ``Transport``, with the
resilience policy and each model's deadline.

The one place that reads API keys, from the environment variables the catalog names (and AWS credentials, from
the standard AWS environment); a key goes straight into its
adapter and is never logged, stored on a spec, or put into a message.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from typing import Protocol

from domain.credentials.ports import CredentialLookup
from domain.llm.model import ModelKind, ModelSpec
from domain.llm.ports import EmbeddingProvider, LLMProvider
from infrastructure.llm.anthropic import AnthropicProvider
from infrastructure.llm.azure_openai import AzureOpenAIProvider
from infrastructure.llm.catalog import CatalogError, StaticModelCatalog
from infrastructure.llm.gemini import GeminiProvider
from infrastructure.llm.local import LocalProvider
from infrastructure.llm.local_embeddings import LocalEmbeddingProvider
from infrastructure.llm.observer import NO_OBSERVER, RouterObserver
from infrastructure.llm.openai import OpenAIBase, OpenAIProvider
from infrastructure.llm.presets import speaks_openai
from infrastructure.llm.resilience import Clock, ResiliencePolicy, Sleep
from infrastructure.llm.router import ModelRouter, deployment_key
from infrastructure.llm.transport import Transport
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES


class RouterSettings(Protocol):
    """The settings the router needs; ``infrastructure.settings.Settings`` is one."""

    @property
    def local_first_token_delay_ms(self) -> int: ...
    @property
    def local_chunk_delay_ms(self) -> int: ...
    @property
    def upstream_max_attempts(self) -> int: ...
    @property
    def upstream_backoff_base_seconds(self) -> float: ...
    @property
    def upstream_backoff_max_seconds(self) -> float: ...
    @property
    def upstream_retry_after_max_seconds(self) -> float: ...
    @property
    def upstream_retry_budget_ratio(self) -> float: ...
    @property
    def upstream_retry_budget_min_retries(self) -> int: ...
    @property
    def upstream_retry_budget_window_seconds(self) -> float: ...
    @property
    def breaker_failure_threshold(self) -> int: ...
    @property
    def breaker_failure_rate(self) -> float: ...
    @property
    def breaker_min_calls(self) -> int: ...
    @property
    def breaker_window_seconds(self) -> float: ...
    @property
    def breaker_cool_down_seconds(self) -> float: ...
    @property
    def upstream_max_response_bytes(self) -> int: ...


def resilience_policy(settings: RouterSettings) -> ResiliencePolicy:
    return ResiliencePolicy(
        max_attempts=settings.upstream_max_attempts,
        backoff_base_seconds=settings.upstream_backoff_base_seconds,
        backoff_max_seconds=settings.upstream_backoff_max_seconds,
        retry_after_max_seconds=settings.upstream_retry_after_max_seconds,
        retry_budget_ratio=settings.upstream_retry_budget_ratio,
        retry_budget_min_retries=settings.upstream_retry_budget_min_retries,
        retry_budget_window_seconds=settings.upstream_retry_budget_window_seconds,
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_failure_rate=settings.breaker_failure_rate,
        breaker_min_calls=settings.breaker_min_calls,
        breaker_window_seconds=settings.breaker_window_seconds,
        breaker_cool_down_seconds=settings.breaker_cool_down_seconds,
    )


def _api_key(spec: ModelSpec, transport: Transport, env: Mapping[str, str]) -> str | None:
    if transport.api_key_env is None:
        return None
    key = env.get(transport.api_key_env)
    if not key:
        raise CatalogError(
            f"model '{spec.name}': environment variable {transport.api_key_env} (api_key_env) is not set"
        )
    return key


def _openai(spec: ModelSpec, transport: Transport, env: Mapping[str, str], max_response_bytes: int) -> OpenAIBase:
    key = _api_key(spec, transport, env)
    if spec.provider == "azure_openai":
        return AzureOpenAIProvider(spec, transport=transport, api_key=key, max_response_bytes=max_response_bytes)
    if transport.client == "sdk":  # imported only when asked for: the SDK alone weighs ~11 MiB
        from infrastructure.llm.openai_sdk import OpenAISDKProvider

        return OpenAISDKProvider(spec, transport=transport, api_key=key, max_response_bytes=max_response_bytes)
    return OpenAIProvider(spec, transport=transport, api_key=key, max_response_bytes=max_response_bytes)


def _anthropic(spec: ModelSpec, transport: Transport, env: Mapping[str, str], max_response_bytes: int) -> LLMProvider:
    key = _api_key(spec, transport, env)
    if key is None:
        raise CatalogError(f"model '{spec.name}': provider anthropic needs an api_key_env")
    if transport.client == "sdk":  # imported only when asked for: the SDK alone weighs ~35 MiB
        from infrastructure.llm.anthropic_sdk import AnthropicSDKProvider

        return AnthropicSDKProvider(spec, transport=transport, api_key=key, max_response_bytes=max_response_bytes)
    return AnthropicProvider(spec, transport=transport, api_key=key, max_response_bytes=max_response_bytes)


def build_provider(
    spec: ModelSpec, transport: Transport, settings: RouterSettings, env: Mapping[str, str]
) -> LLMProvider:
    """The adapter for one deployment (a model without variants, or one variant), by provider and client."""
    if spec.provider == "local":
        return LocalProvider(
            spec,
            first_token_delay=settings.local_first_token_delay_ms / 1000,
            chunk_delay=settings.local_chunk_delay_ms / 1000,
        )
    if speaks_openai(spec.provider):
        return _openai(spec, transport, env, settings.upstream_max_response_bytes)
    if spec.provider == "anthropic":
        return _anthropic(spec, transport, env, settings.upstream_max_response_bytes)
    if spec.provider == "bedrock":  # botocore is imported only when a deployment asks for it (~20 MiB)
        from infrastructure.llm.aws_credentials import aws_credentials
        from infrastructure.llm.bedrock import BedrockProvider

        return BedrockProvider(
            spec,
            transport=transport,
            credentials=aws_credentials(env, model=spec.name),
            region=transport.region or "",
            max_response_bytes=settings.upstream_max_response_bytes,
        )
    if spec.provider == "gemini":
        return GeminiProvider(
            spec,
            transport=transport,
            api_key=_api_key(spec, transport, env),
            max_response_bytes=settings.upstream_max_response_bytes,
        )
    raise CatalogError(f"model '{spec.name}': unknown provider {spec.provider!r}")


def build_embedder(spec: ModelSpec, transport: Transport, env: Mapping[str, str]) -> EmbeddingProvider:
    """The adapter for one embedding model."""
    if spec.provider == "local":
        return LocalEmbeddingProvider(spec)
    if speaks_openai(spec.provider):
        return _openai(spec, transport, env, DEFAULT_MAX_RESPONSE_BYTES)
    if spec.provider == "gemini":
        return GeminiProvider(spec, transport=transport, api_key=_api_key(spec, transport, env))
    raise CatalogError(f"model '{spec.name}': provider {spec.provider!r} has no embeddings")


def build_deployments(
    catalog: StaticModelCatalog,
    settings: RouterSettings,
    env: Mapping[str, str],
    observer: RouterObserver = NO_OBSERVER,
) -> dict[str, LLMProvider]:
    deployments: dict[str, LLMProvider] = {}
    for model in catalog.list():
        if model.kind is not ModelKind.CHAT:
            continue
        for spec in model.deployments:
            key = deployment_key(model.name, spec.variant)
            transport = catalog.transport(model.name, spec.variant)
            provider = build_provider(spec, transport, settings, env)
            deployments[key] = observer.deployment(key, spec, provider, transport)
    return deployments


def build_embedders(catalog: StaticModelCatalog, env: Mapping[str, str]) -> dict[str, EmbeddingProvider]:
    return {
        model.name: build_embedder(model, catalog.transport(model.name), env)
        for model in catalog.list()
        if model.kind is ModelKind.EMBEDDING
    }


def build_router(
    catalog: StaticModelCatalog,
    settings: RouterSettings,
    env: Mapping[str, str],
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    observer: RouterObserver = NO_OBSERVER,
    credentials: CredentialLookup | None = None,
) -> ModelRouter:
    """The router over every deployment of ``catalog``, each call of a model within its deadline; close it with
    ``await router.aclose()`` on shutdown.

    ``observer`` sees retries, fallbacks and circuit changes, and may wrap each deployment's provider (telemetry);
    ``credentials`` finds the keys users brought for a provider (calls of theirs use them).
    """
    return ModelRouter(
        catalog,
        build_deployments(catalog, settings, env, observer),
        embedders=build_embedders(catalog, env),
        deadlines={model.name: catalog.deadline_seconds(model.name) for model in catalog.list()},
        policy=resilience_policy(settings),
        clock=clock,
        sleep=sleep,
        rng=rng,
        observer=observer,
        credentials=credentials,
    )
