"""Usage records, money, spending limits and the budget period. Standard library only.

Money is integer micro-dollars everywhere (1 USD = 1,000,000 micros): no float ever holds an amount.
"""

from __future__ import annotations

import enum
import functools
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from domain.llm.model import KeyOwner, ModelSpec, TokenUsage
from domain.shared.errors import RuleViolation

MICROS_PER_USD = 1_000_000
TOKENS_PER_MTOK = 1_000_000
MAX_BUDGET_MICROS = 10**15  # a billion dollars a month: anything above is a typo
MAX_RATE = 10**9


def cost_micros(usage: TokenUsage, spec: ModelSpec) -> int:
    """What a call cost, rounded UP to a whole micro-dollar over the whole call (never per token).

    Prompt-cache reads (``cached_tokens``) and writes (``cache_write_tokens``) are parts of ``input_tokens``, each
    billed at its own price; a model without a cache price bills them at the input price.
    """
    input_price = spec.input_price_per_mtok_micros
    read_price = _or(spec.cached_input_price_per_mtok_micros, input_price)
    write_price = _or(spec.cache_write_price_per_mtok_micros, input_price)
    exact = (
        usage.uncached_input_tokens * input_price
        + usage.cached_tokens * read_price
        + usage.cache_write_tokens * write_price
        + usage.output_tokens * spec.output_price_per_mtok_micros
    )
    return -(-exact // TOKENS_PER_MTOK)


def cache_savings_micros(usage: TokenUsage, spec: ModelSpec) -> int:
    """What the prompt-cache reads saved against the plain input price (rounded down; never negative)."""
    read_price = _or(spec.cached_input_price_per_mtok_micros, spec.input_price_per_mtok_micros)
    saved = usage.cached_tokens * (spec.input_price_per_mtok_micros - read_price)
    return max(0, saved // TOKENS_PER_MTOK)


def _or(price: int | None, default: int) -> int:
    return default if price is None else price


def most_cost_micros(prompt_tokens: int, output_tokens: int, spec: ModelSpec) -> int:
    """The most a call of this size may cost: its whole prompt at the dearer of the input and cache-write prices."""
    writes = spec.cache_write_price_per_mtok_micros or 0
    usage = TokenUsage(
        input_tokens=prompt_tokens,
        output_tokens=output_tokens,
        cache_write_tokens=prompt_tokens if writes > spec.input_price_per_mtok_micros else 0,
    )
    return cost_micros(usage, spec)


class UsageStatus(enum.StrEnum):
    SUCCESS = "success"
    ERROR = "error"  # the upstream failed (before or during the answer)
    CANCELLED = "cancelled"  # the caller went away (a stream closed early, a request cancelled)


@dataclass(frozen=True, kw_only=True)
class UsageRecord:
    """One model call, as billed. Written once, never changed (an append-only ledger)."""

    id: uuid.UUID
    created_at: datetime
    request_id: str
    user_id: uuid.UUID
    api_key_id: uuid.UUID | None
    conversation_id: uuid.UUID | None
    model: str  # the public model the caller asked for
    served_model: str | None  # the public model that answered (after fallbacks); None when none did
    provider: str | None
    upstream_model: str | None
    variant: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # prompt-cache reads (a part of input_tokens)
    cache_write_tokens: int = 0  # prompt-cache writes (a part of input_tokens)
    cost_micros: int = 0
    cache_savings_micros: int = 0  # what the cache reads saved against the input price
    latency_ms: int = 0
    ttft_ms: int | None = None  # time to first token, streams only
    status: UsageStatus = UsageStatus.SUCCESS
    error_code: str | None = None
    cached: bool = False  # answered from the response cache: no upstream call, no cost
    streamed: bool = False
    estimated: bool = False  # token counts estimated (the upstream never reported them)
    batch_id: uuid.UUID | None = None  # the batch this call was a line of
    batch_priced: bool = False  # billed at the catalog's batch price
    # Whose provider key the call was made with: a user's own key (BYOK) is not charged to the operator's budgets.
    key_owner: KeyOwner = KeyOwner.OPERATOR


class UsageGrouping(enum.StrEnum):
    DAY = "day"
    MODEL = "model"
    KEY = "key"
    USER = "user"
    KEY_OWNER = "key_owner"  # operator | user: whose provider key paid


@dataclass(frozen=True, kw_only=True)
class UsageQuery:
    """Which records to sum: ``since <= created_at < until``, optionally one user, key or model."""

    since: datetime
    until: datetime
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    model: str | None = None
    group_by: UsageGrouping | None = None


@dataclass(frozen=True, kw_only=True)
class UsageTotals:
    """Sums over a set of records; ``group`` is the grouping value (a day ``YYYY-MM-DD``, a model, an id)."""

    group: str | None = None
    requests: int = 0
    cached_requests: int = 0
    failed_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost_micros: int = 0
    cache_savings_micros: int = 0

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return replace(
            self,
            requests=self.requests + other.requests,
            cached_requests=self.cached_requests + other.cached_requests,
            failed_requests=self.failed_requests + other.failed_requests,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_micros=self.cost_micros + other.cost_micros,
            cache_savings_micros=self.cache_savings_micros + other.cache_savings_micros,
        )


@dataclass(frozen=True)
class Limits:
    """Spending and rate limits an administrator set on a user or an API key; ``None``: the default applies
    (no budget; the rate limits of the settings)."""

    monthly_budget_micros: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        if self.monthly_budget_micros is not None and not 0 <= self.monthly_budget_micros <= MAX_BUDGET_MICROS:
            raise RuleViolation("monthly budget must be between 0 and 1,000,000,000 USD")
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= MAX_RATE:
                raise RuleViolation(f"{name} must be between 1 and {MAX_RATE}")


class Keep(enum.Enum):
    """Marks a field a patch leaves as it is (``None`` means: clear it)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class LimitsPatch:
    monthly_budget_micros: int | Keep | None = KEEP
    requests_per_minute: int | Keep | None = KEEP
    tokens_per_minute: int | Keep | None = KEEP

    def apply(self, limits: Limits) -> Limits:
        changes = {name: value for name, value in vars(self).items() if value is not KEEP}
        return replace(limits, **changes) if changes else limits

    @property
    def is_empty(self) -> bool:
        return all(value is KEEP for value in vars(self).values())


@dataclass(frozen=True)
class BudgetPeriod:
    """A calendar month in UTC: budgets reset at its start."""

    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return f"{self.start.year:04d}-{self.start.month:02d}"

    @classmethod
    def containing(cls, when: datetime) -> BudgetPeriod:
        when = when.astimezone(UTC)
        return _month(when.year, when.month)


@functools.lru_cache(maxsize=32)
def _month(year: int, month: int) -> BudgetPeriod:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return BudgetPeriod(start=start, end=end)


class BudgetSubject(enum.StrEnum):
    USER = "user"
    API_KEY = "api_key"


@dataclass(frozen=True, kw_only=True)
class BudgetStatus:
    subject: BudgetSubject
    subject_id: uuid.UUID
    limit_micros: int | None
    spent_micros: int
    period: BudgetPeriod

    @property
    def remaining_micros(self) -> int | None:
        return None if self.limit_micros is None else max(0, self.limit_micros - self.spent_micros)
