"""Latency summaries and the derived figures of a run (added latency, CPU per request), as pure functions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50.0, 90.0, 99.0)
Summary = dict[str, float]
"""``{"p50": ms, "p90": ms, "p99": ms, "max": ms, "mean": ms}``"""


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values: the smallest value with at least ``p``% at or below it."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile out of range: {p}")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def summarize(values_ms: Sequence[float]) -> Summary | None:
    """p50/p90/p99/max/mean of latencies in milliseconds; ``None`` when there are none."""
    if not values_ms:
        return None
    ordered = sorted(values_ms)
    summary = {f"p{p:g}": percentile(ordered, p) for p in PERCENTILES}
    summary["max"] = float(ordered[-1])
    summary["mean"] = math.fsum(ordered) / len(ordered)
    return summary


def added(scenario: Summary | None, baseline: Summary | None) -> Summary | None:
    """What the gateway adds: each percentile of the scenario minus the same percentile of the baseline."""
    if scenario is None or baseline is None:
        return None
    return {k: scenario[k] - baseline[k] for k in ("p50", "p90", "p99") if k in scenario and k in baseline}


@dataclass
class LoadResult:
    """What one load generator run at one concurrency level measured."""

    tool: str
    concurrency: int
    duration_s: float
    requests: int
    """Responses received (any status)."""
    ok: int
    """2xx responses."""
    errors: dict[str, int] = field(default_factory=dict)
    """``status`` (non-2xx), ``connect``, ``read``, ``write``, ``timeout``: only the non-zero ones."""
    latency_ms: Summary | None = None
    """Whole request: to the last byte."""
    ttfb_ms: Summary | None = None
    """To the first byte of the body (streaming scenarios, async client only)."""

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadResult:
        return cls(
            tool=str(data["tool"]),
            concurrency=int(data["concurrency"]),
            duration_s=float(data["duration_s"]),
            requests=int(data["requests"]),
            ok=int(data["ok"]),
            errors={str(k): int(v) for k, v in (data.get("errors") or {}).items()},
            latency_ms=data.get("latency_ms"),
            ttfb_ms=data.get("ttfb_ms"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "ok": self.ok,
            "rps": round(self.rps, 1),
            "errors": dict(self.errors),
            "latency_ms": _rounded(self.latency_ms),
            "ttfb_ms": _rounded(self.ttfb_ms),
        }


def _rounded(summary: Mapping[str, float] | None) -> dict[str, float] | None:
    return None if summary is None else {k: round(v, 3) for k, v in summary.items()}


def cpu_ms_per_request(cpu_seconds: float, requests: int) -> float | None:
    return cpu_seconds * 1000 / requests if requests > 0 else None


def non_zero(errors: Mapping[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in errors.items() if v}
