"""A run's results as Markdown: the tables, the targets of the performance issue, and the README's section."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

START_MARKER = "<!-- bench:start -->"
END_MARKER = "<!-- bench:end -->"

TITLES = {
    "a": "(a) fake upstream, direct",
    "a-stream": "(a) fake upstream, direct, stream",
    "b": "(b) `POST /v1/chat/completions`",
    "c": "(c) `POST /v1/chat/completions`, stream",
    "d": "(d) `POST /api/v1/conversations/{id}/messages`",
}
STREAMING = ("a-stream", "c")

Results = Mapping[str, Any]
Level = Mapping[str, Any]


NONE = "\u2013"  # an en dash for "no value"


def _f(value: float | None, digits: int = 2) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def _signed(value: float | None) -> str:
    return NONE if value is None else f"{value:+.2f}"


def _get(mapping: Mapping[str, Any] | None, key: str) -> Any:
    return None if mapping is None else mapping.get(key)


def _errors(level: Level) -> str:
    errors: Mapping[str, int] = level["load"]["errors"]
    if not errors:
        return "0"
    return ", ".join(f"{n} {kind}" for kind, n in sorted(errors.items()))


def _mib(level: Level, key: str) -> str:
    return _f(_get(level.get("rss"), key), 1)


def _usage(level: Level) -> str:
    usage = level.get("usage") or {}
    if usage.get("per_s") is None:
        return "n/a"
    calls = usage.get("upstream_calls")
    return f"{usage['per_s']:.0f} ({usage['records']}/{usage['calls_ok'] if calls is None else calls})"


def _conc(level: Level) -> str:
    return str(level["concurrency"]) + ("" if level.get("steady", True) else " †")


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def latency_table(results: Results) -> list[str]:
    header = [
        "scenario", "conc.", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "added p50", "added p99",
        "errors", "CPU ms/req", "peak RSS MiB", "usage rec/s (rec/calls)",
    ]  # fmt: skip
    rows = []
    for sid, scenario in results["scenarios"].items():
        if sid in STREAMING or not scenario["available"]:
            continue
        for level in scenario["levels"]:
            lat = level["load"]["latency_ms"] or {}
            add = level.get("added_ms")
            rows.append(
                [
                    TITLES.get(sid, sid), _conc(level), _f(level["load"]["rps"], 0),
                    _f(lat.get("p50")), _f(lat.get("p90")), _f(lat.get("p99")), _f(lat.get("max")),
                    _signed(_get(add, "p50")), _signed(_get(add, "p99")), _errors(level),
                    _f(level.get("cpu_ms_per_request")), _mib(level, "peak_sampled_mib"), _usage(level),
                ]
            )  # fmt: skip
    return _table(header, rows)


def streaming_table(results: Results) -> list[str]:
    header = [
        "scenario", "conc.", "req/s", "TTFB p50", "TTFB p99", "added TTFB p50", "added TTFB p99",
        "TTLB p50", "TTLB p99", "added TTLB p50", "errors", "CPU ms/req", "peak RSS MiB", "usage rec/s (rec/calls)",
    ]  # fmt: skip
    rows = []
    for sid in STREAMING:
        scenario = results["scenarios"].get(sid)
        if scenario is None or not scenario["available"]:
            continue
        for level in scenario["levels"]:
            ttfb = level["load"]["ttfb_ms"] or {}
            ttlb = level["load"]["latency_ms"] or {}
            add_fb, add_lb = level.get("added_ttfb_ms"), level.get("added_ms")
            rows.append(
                [
                    TITLES[sid], _conc(level), _f(level["load"]["rps"], 0),
                    _f(ttfb.get("p50")), _f(ttfb.get("p99")),
                    _signed(_get(add_fb, "p50")), _signed(_get(add_fb, "p99")),
                    _f(ttlb.get("p50")), _f(ttlb.get("p99")), _signed(_get(add_lb, "p50")), _errors(level),
                    _f(level.get("cpu_ms_per_request")), _mib(level, "peak_sampled_mib"), _usage(level),
                ]
            )  # fmt: skip
    return _table(header, rows)


# ---- targets ---------------------------------------------------------------------------------------------------------


def level_at(results: Results, sid: str, concurrency: int) -> Level | None:
    scenario = results["scenarios"].get(sid)
    if not scenario or not scenario["available"]:
        return None
    return next((lv for lv in scenario["levels"] if lv["concurrency"] == concurrency), None)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


Check = tuple[str, str, bool | None]


def _check_added(results: Results, sid: str, key: str, field: str, limit: float, label: str) -> Check:
    level = level_at(results, sid, 1)
    value = _get(level.get(key), field) if level else None
    measured = "not measured" if value is None else f"{value:+.2f} ms"
    return label, measured, None if value is None else value <= limit


def _unsteady(*levels: Level) -> str:
    return " (†)" if any(not level.get("steady", True) for level in levels) else ""


def _check_throughput(results: Results) -> Check:
    level = level_at(results, "b", 64)
    label = "(b) at concurrency 64: ≥ 1,500 req/s, ≤ 0.6 ms CPU/request, no errors"
    if level is None:
        return label, "not measured", None
    rps, cpu, errors = level["load"]["rps"], level.get("cpu_ms_per_request"), sum(level["load"]["errors"].values())
    ok = rps >= 1500 and cpu is not None and cpu <= 0.6 and errors == 0
    return label, f"{rps:.0f} req/s, {_f(cpu)} ms CPU/req, {errors} errors{_unsteady(level)}", ok


def _check_no_fall(results: Results) -> Check:
    low, high = level_at(results, "b", 64), level_at(results, "b", 256)
    label = "(b) throughput does not fall from concurrency 64 to 256 (within 5 %)"
    if low is None or high is None or not low["load"]["rps"]:
        return label, "not measured", None
    ratio = high["load"]["rps"] / low["load"]["rps"]
    return label, f"256/64 = {ratio:.2f}{_unsteady(low, high)}", ratio >= 0.95


def _check_rss(results: Results) -> Check:
    peaks = [
        level["rss"]["hwm_mib"]
        for sid, scenario in results["scenarios"].items()
        if sid not in ("a", "a-stream") and scenario["available"]
        for level in scenario["levels"]
        if level.get("rss") and level["rss"].get("hwm_mib") is not None
    ]
    label = "Switchboard peak RSS ≤ 150 MB (this run; the 1M-request leak check is `make bench-soak`)"
    if not peaks:
        return label, "not measured", None
    return label, f"{max(peaks):.1f} MiB", max(peaks) * 1.048576 <= 150


def _check_usage(results: Results) -> Check:
    label = "usage records: one per upstream call, nothing lost (count equals the calls the fake upstream served)"
    counted = [
        level["usage"]
        for sid, scenario in results["scenarios"].items()
        if sid not in ("a", "a-stream") and scenario["available"]
        for level in scenario["levels"]
        if (level.get("usage") or {}).get("records") is not None
    ]
    if not counted:
        return label, "no usage table in this build", None
    records, answered = sum(u["records"] for u in counted), sum(u["calls_ok"] for u in counted)
    best = max(u["per_s"] for u in counted)
    if any(u.get("upstream_calls") is None for u in counted):
        return (
            label,
            f"{records} records for {answered} answered calls; up to {best:.0f} records/s",
            records == answered,
        )
    calls = sum(u["upstream_calls"] for u in counted)
    measured = f"{records} records for {calls} upstream calls ({answered} answers counted by the load generator, "
    return label, measured + f"the rest still in flight when it stopped); up to {best:.0f} records/s", records == calls


CHECKS: list[Callable[[Results], Check]] = [
    lambda r: _check_added(r, "b", "added_ms", "p50", 1.0, "(b) added latency at concurrency 1, p50 ≤ 1 ms"),
    lambda r: _check_added(r, "b", "added_ms", "p99", 5.0, "(b) added latency at concurrency 1, p99 ≤ 5 ms"),
    lambda r: _check_added(r, "c", "added_ttfb_ms", "p50", 1.0, "(c) added time to first byte at concurrency 1 ≤ 1 ms"),
    _check_throughput,
    _check_no_fall,
    _check_rss,
    _check_usage,
]


def targets_table(results: Results) -> list[str]:
    return _table(
        ["target", "measured", "verdict"], [[c[0], c[1], _verdict(c[2])] for c in (f(results) for f in CHECKS)]
    )


# ---- the whole report ------------------------------------------------------------------------------------------------


def render_markdown(results: Results) -> str:
    machine, config = results["machine"], results["config"]
    lines = [
        f"Run {results['started_at']} on {machine['cpu']} ({machine['cores']} cores, {machine['memory_gib']:.0f} GiB), "
        f"Linux {machine['kernel']}, Python {machine['python']}; load average {machine['loadavg_start']:.2f} before "
        f"the run{_noise(machine)}.",
        "",
        f"Switchboard `{config['commit']}`: `switchboard serve`, {config['server']}; {config['storage']}; "
        f"{_features(config)}. "
        f"Pinning: {config.get('pinning', 'none (shared cores)')}. "
        f"Load: {config['tools']}; {config['duration_s']:g} s per level after {config['warmup_s']:g} s of warm-up. "
        "Latencies in ms; *added* = the scenario's percentile minus (a)'s at the same concurrency and with the same "
        "load generator.",
        "",
        *latency_table(results),
    ]
    if any(results["scenarios"].get(s, {}).get("available") for s in STREAMING):
        lines += ["", "Streaming: time to the first byte of the body (TTFB) and to the last (TTLB).", ""]
        lines += streaming_table(results)
    if any(not level.get("steady", True) for scenario in results["scenarios"].values() for level in scenario["levels"]):
        lines += [
            "",
            "† fewer than 3 requests per connection completed in the window: not a steady state, so the latency and "
            "CPU per request of that row are biased (a longer `--duration` fixes it).",
        ]
    missing = [
        f"- {TITLES.get(sid, sid)}: {scenario['note']}"
        for sid, scenario in results["scenarios"].items()
        if not scenario["available"]
    ]
    if missing:
        lines += ["", "Not measured:", "", *missing]
    lines += ["", "Targets (from the performance issue):", "", *targets_table(results)]
    if results.get("notes"):
        lines += ["", "Notes:", "", *(f"- {note}" for note in results["notes"])]
    return "\n".join(lines) + "\n"


def _features(config: Mapping[str, Any]) -> str:
    features = config.get("features")
    if not features:
        return "no rate limit, budget, usage or cache settings in this build"
    return "feature settings at their defaults: " + ", ".join(f"`{f}`" for f in features)


def _noise(machine: Mapping[str, Any]) -> str:
    others = machine.get("other_cores")
    busy = f"; other processes kept {others:.2f} of the {machine['cores']} cores busy during it" if others else ""
    steal = machine.get("steal_pct") or 0
    if steal:
        busy += f"; the hypervisor took {steal:.1f} % of the CPU time (steal)"
    if machine["loadavg_start"] > 0.5 or (others or 0) > 0.1 or steal > 1:
        return busy + " (a busy machine: absolute figures are noisy, compare within the run)"
    return busy


def replace_between_markers(text: str, block: str) -> str:
    """``text`` with everything between the bench markers replaced by ``block``; the markers must be there once."""
    if text.count(START_MARKER) != 1 or text.count(END_MARKER) != 1:
        raise ValueError(f"expected one {START_MARKER} and one {END_MARKER}")
    if text.index(END_MARKER) < text.index(START_MARKER):
        raise ValueError(f"{END_MARKER} comes before {START_MARKER}")
    head, rest = text.split(START_MARKER)
    _, tail = rest.split(END_MARKER)
    return f"{head}{START_MARKER}\n{block.strip()}\n{END_MARKER}{tail}"
