"""What the router tests share: a fake monotonic clock, a sleep that only records, and routers over the fake
upstream (OpenAI ``gpt-main`` falling back to Anthropic ``claude-main``)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from domain.llm.model import ChatMessage, ChatRole, CompletionRequest
from infrastructure.llm.catalog import parse_catalog
from infrastructure.llm.registry import build_router
from infrastructure.llm.resilience import Clock, Sleep
from infrastructure.llm.router import ModelRouter
from infrastructure.settings import Settings
from tests.fakes.upstream import FakeUpstream

ENV = {"OPENAI_API_KEY": "sk-openai-test", "ANTHROPIC_API_KEY": "sk-anthropic-test"}
GPT, CLAUDE = "gpt-4o-mini", "claude-haiku-4-5"
HELLO = CompletionRequest(model="gpt-main", messages=(ChatMessage(ChatRole.USER, "hello there my friend"),))


@dataclass
class FakeClock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sleeps:
    """An injectable sleep that only records."""

    taken: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


def catalog_text(up: FakeUpstream, *, timeout: float = 1, extra: str = "") -> str:
    """``timeout``: what a hang costs; below 1 s, a loaded CI machine may time out a first connection."""
    return f"""
default_model = "gpt-main"

[models.gpt-main]
provider = "openai"
upstream_model = "{GPT}"
base_url = "{up.base_url}/v1"
api_key_env = "OPENAI_API_KEY"
timeout_seconds = {timeout}
fallbacks = ["claude-main"]
{extra}
[models.claude-main]
provider = "anthropic"
upstream_model = "{CLAUDE}"
base_url = "{up.base_url}"
api_key_env = "ANTHROPIC_API_KEY"
timeout_seconds = {timeout}
{extra}"""


@dataclass
class RouterMaker:
    """Builds routers over the fake upstream (lenient breaker and budget unless told), and closes them."""

    upstream: FakeUpstream
    clock: Clock
    sleep: Sleep
    routers: list[ModelRouter] = field(default_factory=list)

    def __call__(self, *, catalog: str | None = None, **settings: Any) -> ModelRouter:
        values: dict[str, Any] = {
            "upstream_max_attempts": 3,
            "upstream_retry_budget_min_retries": 100,
            "breaker_failure_threshold": 100,
            "breaker_min_calls": 1000,
            **settings,
        }
        parsed = parse_catalog(catalog or catalog_text(self.upstream), env=ENV)
        router = build_router(parsed, Settings(**values), ENV, clock=self.clock, sleep=self.sleep, rng=random.Random(7))
        self.routers.append(router)
        return router

    async def aclose(self) -> None:
        for router in self.routers:
            await router.aclose()


def calls_to(up: FakeUpstream, model: str) -> int:
    return sum(1 for r in up.requests if r.model == model)
