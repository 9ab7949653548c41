"""How the gateway reaches one deployment: where (``base_url``), with which key (``api_key_env``: the name of an
environment variable, never the key), by which client, within which times.

Infrastructure alone knows this; the domain's ``ModelSpec`` says what a model is and costs, not how it is dialled.
The catalog file keeps these keys in each model's (or variant's) table, where ``parse_transport`` reads them; the
registry hands each adapter its deployment's ``Transport``.

A model's ``deadline_seconds`` bounds a whole call (retries and fallbacks included, until a stream's first event);
by default ``DEADLINE_TIMEOUTS`` times the longest ``timeout_seconds`` of its deployments: one timeout, a backoff
and most of a second attempt, or a fallback's whole answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from infrastructure.llm.catalog_fields import Place, optional_str, seconds
from infrastructure.llm.presets import PRESETS

# How a remote deployment is called: "direct" (pooled aiohttp + orjson, the default) or "sdk" (the provider's
# official SDK); both speak the same wire format and pass one contract suite. ``local`` ignores it.
CLIENTS = frozenset({"direct", "sdk"})
# An api_key_env is required (a preset of a hosted service names its own); optional for a self-hosted server.
KEYED_PROVIDERS = frozenset({"openai", "anthropic", "azure_openai", "gemini"})
DIRECT_ONLY = frozenset(
    {"azure_openai", "gemini", "bedrock"}
)  # no SDK client: Switchboard speaks their format directly
AZURE_KEYS = frozenset({"deployment", "api_version", "auth"})  # Azure OpenAI's alone
TRANSPORT_KEYS = (
    frozenset({"base_url", "api_key_env", "client", "timeout_seconds", "connect_timeout_seconds", "region"})
    | AZURE_KEYS
)
AZURE_AUTH = frozenset({"api-key", "bearer"})
DEADLINE_TIMEOUTS = 2
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")


@dataclass(frozen=True, kw_only=True)
class Transport:
    base_url: str | None = None  # None: the provider's public API
    api_key_env: str | None = None  # name of the environment variable holding the key; never the key itself
    client: str = "direct"  # "direct" (lean HTTP) or "sdk" (the official SDK)
    timeout_seconds: float = 60.0  # a whole call without streaming; the longest silence within a stream
    connect_timeout_seconds: float = 5.0
    deployment: str | None = None  # Azure OpenAI: the deployment's name (None: the upstream model's)
    api_version: str | None = None  # Azure OpenAI: the api-version query parameter (None: the adapter's default)
    auth: str = "bearer"  # how the key is sent: "bearer" (Authorization) or "api-key" (Azure's header)
    region: str | None = None  # AWS Bedrock: the region (None: AWS_REGION / AWS_DEFAULT_REGION)

    @property
    def host(self) -> str | None:
        """The server's host name, for telemetry (``None`` for the provider's public API)."""
        return urlsplit(self.base_url).hostname if self.base_url else None


def parse_transport(provider: str, raw: Mapping[str, Any], where: Place, env: Mapping[str, str]) -> Transport:
    """The transport keys of one deployment's table; ``env`` must hold the key its ``api_key_env`` names."""
    preset = PRESETS.get(provider)
    base_url = optional_str(raw, "base_url", where) or (preset.base_url if preset else None)
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise where.error("base_url must start with http:// or https://", "base_url")
    if provider in ("openai_compatible", "azure_openai") and base_url is None:
        raise where.error(f"base_url is required for provider {provider}", "provider")
    client = raw.get("client", "direct")
    if client not in CLIENTS:
        raise where.error(f"unknown client {client!r}: must be one of {', '.join(sorted(CLIENTS))}", "client")
    if client != "direct" and provider in DIRECT_ONLY:
        raise where.error(f'provider {provider} has only the direct client: remove client = "{client}"', "client")
    return Transport(
        **_azure(provider, raw, where),
        region=_region(provider, raw, where, env),
        base_url=base_url,
        api_key_env=_api_key_env(provider, raw, where, env),
        client=client,
        timeout_seconds=seconds(raw, "timeout_seconds", 60.0, where),
        connect_timeout_seconds=seconds(raw, "connect_timeout_seconds", 5.0, where),
    )


def _azure(provider: str, raw: Mapping[str, Any], where: Place) -> dict[str, Any]:
    """Azure OpenAI's deployment, api-version and auth (``api-key`` unless told); refused on other providers."""
    if provider != "azure_openai":
        used = sorted(AZURE_KEYS & set(raw))
        if used:
            raise where.error(f"{used[0]} is for provider azure_openai", used[0])
        return {}
    auth = raw.get("auth", "api-key")
    if auth not in AZURE_AUTH:
        raise where.error(f"auth must be one of {', '.join(sorted(AZURE_AUTH))}", "auth")
    return {
        "deployment": optional_str(raw, "deployment", where),
        "api_version": optional_str(raw, "api_version", where),
        "auth": auth,
    }


def _region(provider: str, raw: Mapping[str, Any], where: Place, env: Mapping[str, str]) -> str | None:
    """A Bedrock deployment's AWS region: its own, else the standard AWS environment's."""
    region = optional_str(raw, "region", where)
    if provider != "bedrock":
        if region is not None:
            raise where.error("region is for provider bedrock", "region")
        return None
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region or not _REGION.fullmatch(region):
        raise where.error("region (or AWS_REGION) must name an AWS region, such as us-east-1", "region")
    return region


def _api_key_env(provider: str, raw: Mapping[str, Any], where: Place, env: Mapping[str, str]) -> str | None:
    preset = PRESETS.get(provider)
    key_env = optional_str(raw, "api_key_env", where) or (preset.api_key_env if preset else None)
    if key_env is None:
        if provider in KEYED_PROVIDERS:
            raise where.error(f"api_key_env is required for provider {provider}", "provider")
        return None
    if not _ENV_NAME.fullmatch(key_env):
        raise where.error("api_key_env must name an environment variable (letters, digits, _)", "api_key_env")
    if not env.get(key_env):
        raise where.error(f"environment variable {key_env} (api_key_env) is not set", "api_key_env")
    return key_env


def default_deadline(transports: Iterable[Transport]) -> float:
    return DEADLINE_TIMEOUTS * max((t.timeout_seconds for t in transports), default=Transport().timeout_seconds)


def parse_deadline(raw: Mapping[str, Any], where: Place, transports: Iterable[Transport]) -> float:
    """A model's ``deadline_seconds``, by default ``DEADLINE_TIMEOUTS`` times its deployments' longest timeout."""
    if "deadline_seconds" not in raw:
        return default_deadline(transports)
    return seconds(raw, "deadline_seconds", 0, where)
