"""Which rate-limit policies apply to a caller: per API key, per user and global, for requests and for tokens.

Defaults come from the settings; an administrator's override on the user or the key replaces its default. A limit
of 0 (or ``None``) switches a policy off.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass

from domain.auth.model import Principal
from domain.usage.rate_limits import LimitState, LimitUnit, RateDecision, RateLimit

GLOBAL = "global"


@dataclass(frozen=True, kw_only=True)
class RateLimitDefaults:
    key_requests_per_minute: int = 0
    key_tokens_per_minute: int = 0
    user_requests_per_minute: int = 0
    user_tokens_per_minute: int = 0
    global_requests_per_minute: int = 0
    global_tokens_per_minute: int = 0


def request_limits(principal: Principal, defaults: RateLimitDefaults) -> tuple[RateLimit, ...]:
    return _limits(
        principal.user_id,
        principal.api_key_id,
        unit=LimitUnit.REQUESTS,
        key=principal.key_limits.requests_per_minute or defaults.key_requests_per_minute,
        user=principal.user_limits.requests_per_minute or defaults.user_requests_per_minute,
        overall=defaults.global_requests_per_minute,
    )


def token_limits(principal: Principal, defaults: RateLimitDefaults) -> tuple[RateLimit, ...]:
    return _limits(
        principal.user_id,
        principal.api_key_id,
        unit=LimitUnit.TOKENS,
        key=principal.key_limits.tokens_per_minute or defaults.key_tokens_per_minute,
        user=principal.user_limits.tokens_per_minute or defaults.user_tokens_per_minute,
        overall=defaults.global_tokens_per_minute,
    )


@functools.lru_cache(maxsize=65_536)  # the same callers come back many times a minute: build their policies once
def _limits(
    user_id: uuid.UUID, api_key_id: uuid.UUID | None, *, unit: LimitUnit, key: int, user: int, overall: int
) -> tuple[RateLimit, ...]:
    suffix = "" if unit is LimitUnit.REQUESTS else "-tokens"
    prefix = "rl:req" if unit is LimitUnit.REQUESTS else "rl:tok"
    limits = []
    if api_key_id is not None and key > 0:
        limits.append(RateLimit(name="key" + suffix, key=f"{prefix}:key:{api_key_id}", limit=key, unit=unit))
    if user > 0:
        limits.append(RateLimit(name="user" + suffix, key=f"{prefix}:user:{user_id}", limit=user, unit=unit))
    if overall > 0:
        limits.append(RateLimit(name=GLOBAL + suffix, key=f"{prefix}:{GLOBAL}", limit=overall, unit=unit))
    return tuple(limits)


def visible_states(decision: RateDecision) -> tuple[LimitState, ...]:
    """What the caller is told: their own policies, and a global one only when it is the one refusing them (the
    global remaining quota would tell anyone how busy the service is)."""
    return tuple(s for s in decision.states if not s.name.startswith(GLOBAL) or s.name == decision.denied_by)
