"""The ``RateLimit`` and ``RateLimit-Policy`` fields (draft-ietf-httpapi-ratelimit-headers, structured-field lists).

    RateLimit-Policy: "key";q=600;w=60, "user";q=1200;w=60
    RateLimit: "key";r=599;t=1, "user";r=1199;t=1

The authentication dependency leaves the states of the caller's request policies in ``request.state.ratelimit``; a
refusal by a tokens-per-minute policy adds its own; the request-context middleware renders them on the way out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.usage.rate_limits import LimitState, LimitUnit

STATE_KEY = "ratelimit"


def remember(state: dict[str, Any], states: Iterable[LimitState]) -> None:
    """Adds ``states`` to the request's (``scope["state"]``), replacing earlier ones of the same policy."""
    current: dict[str, LimitState] = {s.name: s for s in state.get(STATE_KEY, ())}
    current.update((s.name, s) for s in states)
    state[STATE_KEY] = tuple(current.values())


def header_fields(state: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    states: tuple[LimitState, ...] = state.get(STATE_KEY, ())
    if not states:
        return []
    policy = ", ".join(_policy(s) for s in states)
    current = ", ".join(f'"{s.name}";r={s.remaining};t={s.reset_seconds}' for s in states)
    return [(b"ratelimit-policy", policy.encode()), (b"ratelimit", current.encode())]


def _policy(state: LimitState) -> str:
    unit = "" if state.unit is LimitUnit.REQUESTS else f';qu="{state.unit.value}"'
    return f'"{state.name}";q={state.limit}{unit};w={state.window_seconds}'
