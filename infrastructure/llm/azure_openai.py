"""Azure OpenAI: the OpenAI wire format (``openai_format``) at Azure's paths, on the direct client.

A deployment is addressed by name in the path, ``{base_url}/openai/deployments/{deployment}/chat/completions``, with
the ``api-version`` query parameter; the credential is the resource's key in an ``api-key`` header
(``auth = "api-key"``, the default) or a Microsoft Entra ID token as a bearer (``auth = "bearer"``). Azure's content
filter refusing a prompt (400, code ``content_filter``) is ``ContentFiltered``: a clear 400 for the caller
(``upstream_errors``); an answer it cut short ends with ``finish_reason`` ``content_filter``.
"""

from __future__ import annotations

from urllib.parse import quote

from domain.llm.model import ModelSpec
from infrastructure.llm.openai import OpenAIProvider
from infrastructure.llm.transport import Transport
from infrastructure.llm.wire import DEFAULT_MAX_RESPONSE_BYTES

AZURE_API_VERSION = "2024-10-21"  # the newest generally available data-plane version when this was written


class AzureOpenAIProvider(OpenAIProvider):
    """One Azure OpenAI deployment (chat or embeddings), on its own pool of keep-alive connections."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        transport: Transport,
        api_key: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if not transport.base_url or not api_key:
            raise ValueError("an Azure OpenAI deployment needs its resource's base_url and a key or token")
        self._api_version = transport.api_version or AZURE_API_VERSION
        super().__init__(spec, transport=transport, api_key=api_key, max_response_bytes=max_response_bytes)

    def _endpoint(self, transport: Transport, api_key: str | None) -> tuple[str, dict[str, str]]:
        deployment = quote(transport.deployment or self._spec.upstream_model, safe="")
        base = f"{(transport.base_url or '').rstrip('/')}/openai/deployments/{deployment}"
        key = api_key or ""
        header = {"authorization": f"Bearer {key}"} if transport.auth == "bearer" else {"api-key": key}
        return base, header

    def _path(self, operation: str) -> str:
        return f"/{operation}?api-version={quote(self._api_version, safe='')}"
