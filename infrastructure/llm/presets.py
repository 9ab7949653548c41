"""Provider presets: the OpenAI-compatible hosts Switchboard knows by name, so a catalog entry says
``provider = "groq"`` instead of a base URL and a key variable.

Each preset speaks the OpenAI wire format (the ``openai_compatible`` adapter) and fills in what the catalog leaves
out: the base URL, and the environment variable of the key (required for hosted services; a self-hosted server
takes one only when the catalog names it). Anything the catalog sets wins, so ``provider = "vllm"`` with another
``base_url`` is a vLLM server elsewhere. The provider a usage record names is the preset's.

Base URLs as each provider documents its OpenAI-compatible endpoint (checked 2026-12-07).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

OPENAI_WIRE: Final = frozenset({"openai", "openai_compatible", "azure_openai"})  # speaking OpenAI's format


@dataclass(frozen=True, kw_only=True)
class Preset:
    base_url: str
    api_key_env: str | None  # the default key variable; None: a self-hosted server, keyless unless told
    embeddings: bool = False  # serves /v1/embeddings
    label: str = ""


PRESETS: Final[dict[str, Preset]] = {
    "huggingface": Preset(
        base_url="https://router.huggingface.co/v1", api_key_env="HF_TOKEN", label="Hugging Face Inference Providers"
    ),
    "tgi": Preset(base_url="http://localhost:8080/v1", api_key_env=None, label="Hugging Face TGI (self-hosted)"),
    "groq": Preset(base_url="https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY", label="Groq"),
    "mistral": Preset(
        base_url="https://api.mistral.ai/v1", api_key_env="MISTRAL_API_KEY", embeddings=True, label="Mistral"
    ),
    "together": Preset(
        base_url="https://api.together.xyz/v1", api_key_env="TOGETHER_API_KEY", embeddings=True, label="Together AI"
    ),
    "deepseek": Preset(base_url="https://api.deepseek.com/v1", api_key_env="DEEPSEEK_API_KEY", label="DeepSeek"),
    "openrouter": Preset(base_url="https://openrouter.ai/api/v1", api_key_env="OPENROUTER_API_KEY", label="OpenRouter"),
    "ollama": Preset(base_url="http://localhost:11434/v1", api_key_env=None, embeddings=True, label="Ollama"),
    "vllm": Preset(base_url="http://localhost:8000/v1", api_key_env=None, embeddings=True, label="vLLM"),
}


# Providers a user may bring their own key for (``/api/v1/provider-credentials``): the hosted APIs a key alone opens.
# Not Azure OpenAI (a key belongs to a resource whose URL is the operator's), Bedrock (AWS credentials and IAM),
# self-hosted servers (``openai_compatible``, tgi, ollama, vllm: the operator's own) or ``local``.
DIRECT_USER_KEY_PROVIDERS: Final = frozenset({"openai", "anthropic", "gemini"})


def takes_user_keys(provider: str) -> bool:
    """Whether a user may bring their own key for ``provider``."""
    preset = PRESETS.get(provider)
    return provider in DIRECT_USER_KEY_PROVIDERS or (preset is not None and preset.api_key_env is not None)


def speaks_openai(provider: str) -> bool:
    """Whether a provider kind is served by the OpenAI-format adapter (OpenAI, compatible servers, presets)."""
    return provider in OPENAI_WIRE or provider in PRESETS


def openai_compatible(provider: str) -> bool:
    """A server mimicking OpenAI's API (not OpenAI itself): it knows ``max_tokens`` rather than
    ``max_completion_tokens``."""
    return provider == "openai_compatible" or provider in PRESETS
