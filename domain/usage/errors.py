"""Errors of the usage context: a rate limit hit, a budget used up."""

from __future__ import annotations

from domain.shared.errors import DomainError, RateLimited
from domain.usage.rate_limits import LimitState


class LimitExceeded(RateLimited):
    """A rate-limit policy refused the request; ``states`` says where every policy involved stands."""

    def __init__(self, detail: str, *, retry_after_seconds: float, states: tuple[LimitState, ...]) -> None:
        super().__init__(detail, retry_after_seconds=retry_after_seconds)
        self.states = states


class BudgetExceeded(DomainError):
    """A spending limit is used up for the current period. Unlike a rate limit, waiting a minute will not help."""

    code = "budget_exceeded"
    title = "Budget exceeded"

    def __init__(self, detail: str, *, budget: str, limit_micros: int, spent_micros: int) -> None:
        super().__init__(detail)
        self.budget = budget  # which budget: "user" or "api_key"
        self.limit_micros = limit_micros
        self.spent_micros = spent_micros
