"""``make bench-soak``: a long run at one concurrency, watching Switchboard's memory for a leak.

    python -m bench.soak [--requests 1000000] [--concurrency 64] [--scenario b|d] [--max-minutes 60]

Load runs in chunks (``--chunk-seconds``) until ``--requests`` have been answered or ``--max-minutes`` is up; the
resident set size is sampled throughout. The verdict compares the mean RSS of the second quarter of the requests
with that of the last quarter: a leak grows between them, a warm cache does not.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import Loader
from bench.procs import RssSampler, memory_kib
from bench.report import TITLES
from bench.run import REPO, RESULTS
from bench.stack import StackOptions, running_stack

GROWTH_TOLERANCE_MIB = 2.0
GROWTH_TOLERANCE_SHARE = 0.02
RSS_LIMIT_MB = 150


@dataclass(frozen=True)
class Point:
    requests: int
    """Requests answered when the chunk ended (cumulative)."""
    rss_mib: float
    """Mean RSS over the chunk."""


def quarter_means(points: Sequence[Point], total: int) -> list[float | None]:
    """Mean RSS of the chunks ending in each quarter of ``total`` requests (``None`` for a quarter with none)."""
    buckets: list[list[float]] = [[], [], [], []]
    for point in points:
        index = min(3, max(0, (point.requests * 4 - 1) // total)) if total else 0
        buckets[index].append(point.rss_mib)
    return [sum(b) / len(b) if b else None for b in buckets]


def leak_verdict(quarters: Sequence[float | None]) -> tuple[bool | None, str]:
    second, last = quarters[1], quarters[3]
    if second is None or last is None:
        return None, "too few samples to compare the second and the last quarter"
    growth = last - second
    allowed = max(GROWTH_TOLERANCE_MIB, GROWTH_TOLERANCE_SHARE * second)
    ok = growth <= allowed
    return ok, f"RSS {second:.1f} MiB in the second quarter, {last:.1f} MiB in the last ({growth:+.1f} MiB)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--scenario", choices=("b", "d"), help="default: b when this build has it, else d")
    parser.add_argument("--chunk-seconds", type=float, default=15.0)
    parser.add_argument("--max-minutes", type=float, default=60.0, help="stop here even if --requests is not reached")
    parser.add_argument("--tool", choices=("auto", "wrk", "client"), default="auto")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument(
        "--server-repo",
        type=Path,
        help="serve another checkout with its .venv, e.g. one made with `uv sync --no-dev` (a production install)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    loader = Loader.choose(sys.executable, REPO, args.tool)
    workdir = Path(tempfile.mkdtemp(prefix="sb-soak-"))
    options = StackOptions(
        repo=REPO,
        python=sys.executable,
        workdir=workdir,
        postgres=not args.no_postgres,
        redis=not args.no_redis,
        server_repo=args.server_repo.resolve() if args.server_repo else None,
    )
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with running_stack(options) as stack:
        sid = args.scenario or ("b" if "b" in stack.targets else "d")
        if sid not in stack.targets:
            raise SystemExit(f"{TITLES[sid]}: {stack.unavailable.get(sid, 'not available')}")
        target = stack.targets[sid]
        print(f"soak: {TITLES[sid]} at concurrency {args.concurrency}, {stack.storage.describe()}", flush=True)
        loader.run(target, args.concurrency, 5)  # warm-up
        points, requests, errors = [], 0, 0
        deadline = time.monotonic() + args.max_minutes * 60
        while requests < args.requests and time.monotonic() < deadline:
            with RssSampler(target.pid, interval=0.5) as rss:
                load = loader.run(target, args.concurrency, args.chunk_seconds)
            requests += load.requests
            errors += load.error_count
            points.append(Point(requests, sum(rss.samples) / max(1, len(rss.samples)) / 1024))
            print(f"  {requests} requests, {load.rps:.0f} req/s, RSS {points[-1].rss_mib:.1f} MiB", flush=True)
        hwm = memory_kib(target.pid, "VmHWM") or 0
    shutil.rmtree(workdir, ignore_errors=True)
    quarters = quarter_means(points, requests)
    ok, detail = leak_verdict(quarters)
    summary: dict[str, Any] = {
        "started_at": started,
        "scenario": sid,
        "concurrency": args.concurrency,
        "requests": requests,
        "requested": args.requests,
        "errors": errors,
        "peak_rss_mib": round(hwm / 1024, 1),
        "quarters_rss_mib": [None if q is None else round(q, 1) for q in quarters],
        "leak_check": {"ok": ok, "detail": detail},
        "points": [{"requests": p.requests, "rss_mib": round(p.rss_mib, 1)} for p in points],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"soak-{started.replace(':', '').replace('-', '')}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    reached = "" if requests >= args.requests else f" (stopped by --max-minutes before {args.requests})"
    print(f"{requests} requests{reached}, {errors} errors; peak RSS {summary['peak_rss_mib']} MiB")
    print(f"leak check: {'no growth' if ok else 'GROWTH' if ok is False else 'n/a'}: {detail}")
    print(f"peak RSS ≤ {RSS_LIMIT_MB} MB: {'yes' if hwm * 1024 <= RSS_LIMIT_MB * 1e6 else 'no'}; results: {path}")
    return 0 if ok is not False else 1


if __name__ == "__main__":
    sys.exit(main())
