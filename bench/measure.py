"""One measurement: warm up, then drive load at one concurrency for a bounded time while watching the server's CPU,
memory, usage records and upstream calls."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import RssSampler, cpu_seconds, memory_kib, wait_idle
from bench.stack import Stack, Target
from bench.stats import LoadResult, cpu_ms_per_request
from bench.wrk import run_wrk, wrk_path

USAGE_SETTLE_SECONDS = 5.0
USAGE_STABLE_POLLS = 4
USAGE_POLL_SECONDS = 0.25
# A closed loop that completes fewer requests than this per connection has not reached a steady state: what was in
# flight when the window closed weighs too much (latency and CPU/request are biased; run longer).
STEADY_REQUESTS_PER_CONNECTION = 3


@dataclass
class Loader:
    """Runs the load generator for a target: wrk for plain requests when allowed and installed, else the client."""

    python: str
    repo: Path
    use_wrk: bool
    timeout: float = 10.0

    @classmethod
    def choose(cls, python: str, repo: Path, tool: str) -> Loader:
        if tool == "wrk" and wrk_path() is None:
            raise SystemExit("--tool wrk: wrk is not installed (apt-get install wrk)")
        return cls(python, repo, use_wrk=tool != "client" and wrk_path() is not None)

    def tool_for(self, target: Target) -> str:
        return "wrk" if self.use_wrk and not target.streaming else "async-client"

    def run(self, target: Target, concurrency: int, duration: float) -> LoadResult:
        if self.tool_for(target) == "wrk":
            return run_wrk(
                url=target.url,
                paths=target.paths,
                body_file=target.body_file,
                auth=target.auth,
                concurrency=concurrency,
                duration=duration,
                timeout=self.timeout,
            )
        return self._client(target, concurrency, duration)

    def _client(self, target: Target, concurrency: int, duration: float) -> LoadResult:
        command = [
            self.python, "-m", "bench.client", "--url", target.url, "--paths", ",".join(target.paths),
            "--body-file", str(target.body_file), "--concurrency", str(concurrency), "--duration", str(duration),
            "--timeout", str(self.timeout),
        ]  # fmt: skip
        if target.auth:
            command += ["--auth", target.auth]
        done = subprocess.run(
            command, cwd=self.repo, capture_output=True, text=True, timeout=duration + self.timeout + 60, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"the load client exited {done.returncode}: {done.stderr.strip()[-1000:]}")
        return LoadResult.from_dict(json.loads(done.stdout.strip().splitlines()[-1]))


def upstream_served(stack: Stack) -> int | None:
    try:
        with urllib.request.urlopen(f"{stack.upstream.url}/_fake/stats", timeout=5) as response:
            return int(json.load(response)["completions_served"])
    except (OSError, ValueError, KeyError):
        return None


def settled_count(stack: Stack, table: str) -> int:
    """The usage table's row count once it stops moving (batched writers flush a little after the calls)."""
    deadline = time.monotonic() + USAGE_SETTLE_SECONDS
    last, stable = stack.storage.count_rows(table), 0
    while stable < USAGE_STABLE_POLLS and time.monotonic() < deadline:
        time.sleep(USAGE_POLL_SECONDS)
        current = stack.storage.count_rows(table)
        stable = stable + 1 if current == last else 0
        last = current
    return last


def measure_level(
    stack: Stack, loader: Loader, target: Target, concurrency: int, *, duration: float, warmup: float
) -> dict[str, Any]:
    servers = [stack.switchboard.pid, stack.upstream.pid]
    drained = wait_idle(servers)  # what the previous run left in flight
    if warmup > 0:
        loader.run(target, concurrency, warmup)
        drained += wait_idle(servers)
    table = stack.storage.usage_table() if target.accounts_usage else None
    records_before = settled_count(stack, table) if table else None
    served_before = upstream_served(stack)
    cpu_before = cpu_seconds(target.pid)
    with RssSampler(target.pid) as rss:
        load = loader.run(target, concurrency, duration)
        # Requests the load generator left in flight finish first (at high concurrency some wait for a database
        # connection, and so does the usage writer): only then does the count of records mean anything.
        drained += wait_idle(servers)
        records_after = settled_count(stack, table) if table else None
    cpu = cpu_seconds(target.pid) - cpu_before
    served_after = upstream_served(stack)
    hwm = memory_kib(target.pid, "VmHWM")
    level: dict[str, Any] = {
        "concurrency": concurrency,
        "load": load.to_dict(),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_request": _round(cpu_ms_per_request(cpu, load.requests)),
        "rss": {
            "peak_sampled_mib": round(rss.peak_kib / 1024, 1) if rss.samples else None,
            "hwm_mib": round(hwm / 1024, 1) if hwm is not None else None,
        },
        "upstream_calls_per_request": _round(
            (served_after - served_before) / load.requests
            if served_before is not None and served_after is not None and load.requests
            else None
        ),
        "usage": _usage(
            table,
            records_before,
            records_after,
            load,
            served_after - served_before if served_before is not None and served_after is not None else None,
        ),
        "drain_s": round(drained, 1),
        "steady": load.requests >= STEADY_REQUESTS_PER_CONNECTION * concurrency,
    }
    return level


def _usage(
    table: str | None, before: int | None, after: int | None, load: LoadResult, upstream_calls: int | None
) -> dict[str, Any] | None:
    """Records written during the level against the upstream calls made in it. The load generator's count of
    answers is smaller by the requests still in flight when it stopped, which the server finished (and billed)."""
    if table is None or before is None or after is None:
        return None
    records = after - before
    return {
        "table": table,
        "records": records,
        "calls_ok": load.ok,
        "upstream_calls": upstream_calls,
        "per_s": round(records / load.duration_s, 1),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
