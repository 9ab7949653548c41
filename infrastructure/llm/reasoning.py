"""The caller's reasoning settings in each provider's terms: an effort (OpenAI's ``reasoning_effort``) or a thinking
budget in tokens (Anthropic's extended thinking, Gemini's ``thinkingBudget``), each derived from the other when the
caller gave only one. ``none`` turns thinking off where it can be turned off."""

from __future__ import annotations

from domain.llm.model import Reasoning, ReasoningEffort

# Tokens of thinking per effort, for the providers that take a budget.
BUDGETS = {
    ReasoningEffort.NONE: 0,
    ReasoningEffort.MINIMAL: 1024,
    ReasoningEffort.LOW: 2048,
    ReasoningEffort.MEDIUM: 8192,
    ReasoningEffort.HIGH: 16384,
    ReasoningEffort.XHIGH: 32768,
}


def thinking_budget(reasoning: Reasoning | None) -> int | None:
    """The thinking budget asked for (0: none), or ``None`` when the caller said nothing about reasoning."""
    if reasoning is None:
        return None
    if reasoning.budget_tokens is not None:
        return reasoning.budget_tokens
    return None if reasoning.effort is None else BUDGETS[reasoning.effort]


def reasoning_effort(reasoning: Reasoning | None) -> str | None:
    """The effort asked for, or the one nearest a budget the caller gave instead."""
    if reasoning is None:
        return None
    if reasoning.effort is not None:
        return reasoning.effort.value
    if reasoning.budget_tokens is None:
        return None
    budget = reasoning.budget_tokens
    if budget <= BUDGETS[ReasoningEffort.LOW]:
        return ReasoningEffort.LOW.value
    return (ReasoningEffort.MEDIUM if budget <= BUDGETS[ReasoningEffort.MEDIUM] else ReasoningEffort.HIGH).value
