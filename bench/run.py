"""``make bench``: Switchboard against a fake upstream, at several concurrency levels, into ``bench/results/``.

    python -m bench.run [--quick] [--duration S] [--concurrency 1,16,64,256] [--scenarios a,b,c,d]

Scenarios: (a) the fake upstream directly, the physical limit (plain and streaming); (b) ``POST /v1/chat/completions``
through Switchboard with an API key; (c) the same, streamed; (d) ``POST /api/v1/conversations/{id}/messages``.
A scenario whose endpoint this build lacks is reported as not available. Results: ``bench/results/<time>.json`` and
``.md``, and ``bench/results/latest.md``, which ``python -m bench.readme`` copies into the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from bench.measure import Loader, measure_level
from bench.procs import default_pinning, parse_cpus
from bench.report import TITLES, render_markdown
from bench.stack import Stack, StackOptions, running_stack
from bench.stats import added

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
BASELINES = {"b": "a", "d": "a", "c": "a-stream"}
ORDER = ("a", "a-stream", "b", "c", "d")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per level after 1 s of warm-up")
    parser.add_argument("--duration", type=float, help="seconds per level (default 10, --quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds of discarded load before each level (default 2)")
    parser.add_argument("--concurrency", default="1,16,64,256", help="comma-separated levels")
    parser.add_argument("--scenarios", default="a,b,c,d", help="any of a,b,c,d (a is always run: the baseline)")
    parser.add_argument("--tool", choices=("auto", "wrk", "client"), default="auto", help="load generator")
    parser.add_argument("--no-postgres", action="store_true", help="use SQLite even if PostgreSQL is reachable")
    parser.add_argument("--no-redis", action="store_true", help="do not hand Redis to Switchboard")
    parser.add_argument("--history-limit", type=int, default=20, help="SWITCHBOARD_HISTORY_LIMIT for (d)")
    parser.add_argument("--log-level", default="WARNING", help="SWITCHBOARD_LOG_LEVEL (INFO logs every request)")
    parser.add_argument("--upstream-delay-ms", type=float, default=0.0, help="the fake upstream's fixed delay")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra server environment")
    parser.add_argument(
        "--server-cpus", help="taskset CPUs for Switchboard (default: the first usable CPU when there are two or more)"
    )
    parser.add_argument(
        "--load-cpus", help="CPUs for the fake upstream and the load generator (default: the other usable CPUs)"
    )
    parser.add_argument("--no-pin", action="store_true", help="pin nothing (shared cores: CPU figures inflate)")
    parser.add_argument("--server-repo", type=Path, help="serve another checkout (its .venv), e.g. a baseline for A/B")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, catalog, bodies)")
    return parser


def _scenarios(spec: str) -> list[str]:
    wanted = {s.strip() for s in spec.split(",") if s.strip()}
    unknown = wanted - {"a", "b", "c", "d"}
    if unknown:
        raise SystemExit(f"unknown scenarios: {sorted(unknown)}")
    wanted.add("a")
    if "c" in wanted:
        wanted.add("a-stream")
    return [s for s in ORDER if s in wanted]


def _machine() -> dict[str, Any]:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_start": round(os.getloadavg()[0], 2),
    }


def busy_seconds() -> float:
    """CPU-seconds the whole machine has spent not idle (``/proc/stat``), to see how busy others kept it."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_fields() -> tuple[float, float]:
    """The whole machine's CPU-seconds so far, and those the hypervisor took from it (steal), from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    steal = fields[7] if len(fields) > 7 else 0
    return sum(fields[:8]) / os.sysconf("SC_CLK_TCK"), steal / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU-seconds of this process and its waited-for children (servers, wrk, clients)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _commit(repo: Path = REPO) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return (git("rev-parse", "--short", "HEAD") or "unknown") + ("-dirty" if dirty else "")


def _server_line(log_level: str, history_limit: int) -> str:
    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    http = "httptools" if find_spec("httptools") else "h11"
    return f"uvicorn, 1 worker, {loop} + {http}, log level {log_level}, history limit {history_limit}"


def _tools(loader: Loader) -> str:
    if not loader.use_wrk:
        return "the built-in async client for every scenario (wrk not installed or not chosen)"
    version = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    name = (version.stdout or version.stderr).split("Copyright")[0].strip() or "wrk"
    return f"{name} (1 thread, closed loop) for plain requests, the built-in async client for streams"


def measure_all(
    stack: Stack, loader: Loader, scenarios: list[str], levels: list[int], duration: float, warmup: float
) -> tuple[dict[str, Any], list[str]]:
    """Every available scenario at every level, level by level (so a baseline and its scenario run close in time)."""
    results: dict[str, Any] = {}
    notes: list[str] = []
    if "c" not in stack.targets:  # the streaming baseline is only there to compare (c) with
        scenarios = [s for s in scenarios if s != "a-stream"]
    for sid in scenarios:
        available = sid in stack.targets
        results[sid] = {
            "title": TITLES[sid],
            "available": available,
            "note": "" if available else stack.unavailable.get(sid, ""),
            "tool": loader.tool_for(stack.targets[sid]) if available else None,
            "levels": [],
        }
    for concurrency in levels:
        for sid in scenarios:
            if sid not in stack.targets:
                continue
            if stack.switchboard.process.poll() is not None:
                raise RuntimeError(f"Switchboard exited with {stack.switchboard.process.returncode}")
            print(f"  {TITLES[sid]} at concurrency {concurrency} ...", flush=True)
            try:
                level = measure_level(stack, loader, stack.targets[sid], concurrency, duration=duration, warmup=warmup)
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
                notes.append(f"{TITLES[sid]} at concurrency {concurrency} failed: {exc}")
                print(f"    failed: {exc}", flush=True)
                continue
            results[sid]["levels"].append(level)
            print(f"    {_one_line(level)}", flush=True)
    _add_baseline_deltas(results)
    notes += headroom_notes(results)
    return results, notes


def _one_line(level: dict[str, Any]) -> str:
    load = level["load"]
    lat = load["latency_ms"] or {}
    errors = sum(load["errors"].values())
    return (
        f"{load['rps']:.0f} req/s, p50 {lat.get('p50', 0):.2f} ms, p99 {lat.get('p99', 0):.2f} ms, "
        f"{errors} errors, {level['cpu_ms_per_request'] or 0:.2f} ms CPU/req"
    )


def _add_baseline_deltas(results: dict[str, Any]) -> None:
    for sid, base_id in BASELINES.items():
        if sid not in results or base_id not in results:
            continue
        base = {lv["concurrency"]: lv for lv in results[base_id]["levels"]}
        for level in results[sid]["levels"]:
            baseline = base.get(level["concurrency"])
            if baseline is None:
                continue
            level["added_ms"] = added(level["load"]["latency_ms"], baseline["load"]["latency_ms"])
            if sid == "c":
                level["added_ttfb_ms"] = added(level["load"]["ttfb_ms"], baseline["load"]["ttfb_ms"])


UPSTREAM_HEADROOM = 2.0


def headroom_notes(results: dict[str, Any]) -> list[str]:
    """Where the fake upstream alone did not serve at least twice what the scenario through Switchboard did: there
    the upstream, not Switchboard, may be what limits the scenario."""
    notes = []
    for sid, base_id in BASELINES.items():
        if sid not in results or base_id not in results:
            continue
        base = {lv["concurrency"]: lv["load"]["rps"] for lv in results[base_id]["levels"]}
        for level in results[sid]["levels"]:
            limit, rps = base.get(level["concurrency"]), level["load"]["rps"]
            if limit is not None and rps > 0:
                level["upstream_headroom"] = round(limit / rps, 1)
                if limit < UPSTREAM_HEADROOM * rps:
                    notes.append(
                        f"{TITLES[sid]} at concurrency {level['concurrency']}: the fake upstream alone served only "
                        f"{limit / rps:.1f} times as much; it may be the bottleneck there"
                    )
    return notes


def write_results(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"].replace(":", "").replace("-", "")
    json_path, md_path = out / f"{stamp}.json", out / f"{stamp}.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(results)
    md_path.write_text(markdown, encoding="utf-8")
    (out / "latest.md").write_text(markdown, encoding="utf-8")
    return json_path, md_path


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    duration = args.duration or (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    scenarios = _scenarios(args.scenarios)
    loader = Loader.choose(sys.executable, REPO, args.tool)
    server_cpus, load_cpus = (None, None) if args.no_pin else default_pinning()
    server_cpus, load_cpus = args.server_cpus or server_cpus, args.load_cpus or load_cpus
    if load_cpus:  # inherited by everything started from here but the server: the fake upstream, wrk, the client
        os.sched_setaffinity(0, parse_cpus(load_cpus))
    extra_env = dict(item.split("=", 1) for item in args.env)
    machine = _machine()
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    busy0, own0, wall0 = busy_seconds(), own_seconds(), time.monotonic()
    total0, steal0 = cpu_fields()
    workdir = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    print(f"load generator: {_tools(loader)}", flush=True)
    options = StackOptions(
        repo=REPO,
        python=sys.executable,
        workdir=workdir,
        postgres=not args.no_postgres,
        redis=not args.no_redis,
        history_limit=args.history_limit,
        log_level=args.log_level,
        upstream_delay_ms=args.upstream_delay_ms,
        extra_env=extra_env,
        server_cpus=server_cpus,
        server_repo=args.server_repo.resolve() if args.server_repo else None,
    )
    try:
        with running_stack(options) as stack:
            print(f"storage: {stack.storage.describe()}; work folder {workdir}", flush=True)
            print(f"feature settings in this build: {', '.join(stack.features) or 'none'}", flush=True)
            for note in stack.notes:
                print(f"note: {note}", flush=True)
            for sid, why in stack.unavailable.items():
                print(f"{TITLES[sid]}: {why}", flush=True)
            measured, notes = measure_all(stack, loader, scenarios, levels, duration, warmup)
            storage, stack_notes, features = stack.storage.describe(), stack.notes, stack.features
        exit_codes = stack.exit_codes
    except Exception:
        print(f"the benchmark failed; logs are in {workdir}", file=sys.stderr)
        raise
    wall = time.monotonic() - wall0
    machine["other_cores"] = round(max(0.0, (busy_seconds() - busy0) - (own_seconds() - own0)) / wall, 2)
    total1, steal1 = cpu_fields()
    # On a virtual machine the host may take CPU time from it (steal): a run with some measured a slower machine.
    machine["steal_pct"] = round(100 * (steal1 - steal0) / max(total1 - total0, 1e-9), 1)
    if exit_codes.get("switchboard") not in (0, None):
        notes.append(f"Switchboard exited with {exit_codes['switchboard']} at shutdown")
    results = {
        "started_at": started,
        "machine": machine,
        "config": {
            "commit": _commit(args.server_repo or REPO),
            "server": _server_line(args.log_level, args.history_limit),
            "storage": storage,
            "features": features,
            "tools": _tools(loader),
            "duration_s": duration,
            "warmup_s": warmup,
            "concurrency": levels,
            "pinning": f"server on CPU {server_cpus}, fake upstream and load on CPU {load_cpus}"
            if server_cpus
            else "none (shared cores)",
        },
        "scenarios": measured,
        "notes": [*stack_notes, *notes],
    }
    json_path, md_path = write_results(results, args.out)
    print()
    print(render_markdown(results))
    print(f"results: {json_path.relative_to(REPO) if json_path.is_relative_to(REPO) else json_path}, {md_path.name}")
    print("copy the table into the README with: uv run python -m bench.readme")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
