"""Budgets and rate limits as the API shows and takes them: dollars as decimals, stored as integer micro-dollars."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from domain.usage.model import KEEP, MICROS_PER_USD, Limits, LimitsPatch


def usd(micros: int) -> Decimal:
    return Decimal(micros) / MICROS_PER_USD


class LimitsResponse(BaseModel):
    monthly_budget_usd: Decimal | None = Field(description="Spending limit per calendar month (UTC); null: none.")
    requests_per_minute: int | None = Field(description="Override of the default; null: the default applies.")
    tokens_per_minute: int | None = Field(description="Override of the default; null: the default applies.")

    @classmethod
    def of(cls, limits: Limits) -> LimitsResponse:
        budget = limits.monthly_budget_micros
        return cls(
            monthly_budget_usd=None if budget is None else usd(budget),
            requests_per_minute=limits.requests_per_minute,
            tokens_per_minute=limits.tokens_per_minute,
        )


class LimitsPatchFields(BaseModel):
    """Fields an admin may send to change limits; a field sent as null clears it, one left out is unchanged."""

    model_config = ConfigDict(extra="forbid")

    monthly_budget_usd: Decimal | None = Field(
        None, ge=0, le=1_000_000_000, decimal_places=6, description="US dollars per calendar month (UTC)."
    )
    requests_per_minute: int | None = Field(None, ge=1, le=1_000_000_000)
    tokens_per_minute: int | None = Field(None, ge=1, le=1_000_000_000)

    def limits_patch(self) -> LimitsPatch:
        sent = self.model_fields_set
        budget = self.monthly_budget_usd
        return LimitsPatch(
            monthly_budget_micros=(
                KEEP if "monthly_budget_usd" not in sent else None if budget is None else int(budget * MICROS_PER_USD)
            ),
            requests_per_minute=self.requests_per_minute if "requests_per_minute" in sent else KEEP,
            tokens_per_minute=self.tokens_per_minute if "tokens_per_minute" in sent else KEEP,
        )
