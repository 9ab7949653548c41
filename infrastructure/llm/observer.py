"""What the router reports as it works, for metrics, traces and logs; does nothing unless an observer is given.

The composition root passes a subclass (``infrastructure.observability.llm.LLMTelemetry``); the router and its
resilience stay free of any telemetry library.
"""

from __future__ import annotations

from domain.llm.model import ModelSpec
from domain.llm.ports import LLMProvider
from domain.shared.errors import UpstreamError
from infrastructure.llm.transport import Transport


class RouterObserver:
    def deployment(self, key: str, spec: ModelSpec, provider: LLMProvider, transport: Transport) -> LLMProvider:
        """The provider the router will call for deployment ``key`` (reached by ``transport``): ``provider`` itself,
        or a wrapper of it."""
        return provider

    def retried(self, deployment: str, error: BaseException | None) -> None:
        """A call to ``deployment`` failed with ``error`` and is about to be tried again."""

    def fell_back(self, model: str, error: UpstreamError) -> None:
        """``model`` failed with ``error``; its fallbacks are tried next."""

    def circuit_changed(self, deployment: str, state: str) -> None:
        """The circuit breaker of ``deployment`` is now ``state`` (closed, open, half_open)."""


NO_OBSERVER = RouterObserver()
