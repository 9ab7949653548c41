"""Running ``wrk`` with ``post.lua`` and reading the JSON line its ``done()`` prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.stats import LoadResult, non_zero

TOOL = "wrk"
SCRIPT = Path(__file__).with_name("post.lua")
MARKER = "BENCH_JSON "


class WrkError(RuntimeError):
    pass


def wrk_path() -> str | None:
    return shutil.which("wrk")


def parse_wrk_output(stdout: str, concurrency: int) -> LoadResult:
    """The ``LoadResult`` in the ``BENCH_JSON`` line of ``wrk``'s output (latencies from µs to ms).

    ``wrk`` counts a response with a status of 400 or more in ``errors.status``; ``requests`` counts every complete
    response, so the 2xx/3xx ones are the difference.
    """
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise WrkError(f"no {MARKER.strip()} line in wrk's output:\n{stdout[-2000:]}")
    data: dict[str, Any] = json.loads(line[len(MARKER) :])
    requests = int(data["requests"])
    errors = {k: int(v) for k, v in data["errors"].items()}
    latency = data["latency_us"]
    summary = None
    if requests:
        summary = {k: float(latency[k]) / 1000 for k in ("p50", "p90", "p99", "max", "mean")}
    return LoadResult(
        tool=TOOL,
        concurrency=concurrency,
        duration_s=int(data["duration_us"]) / 1e6,
        requests=requests,
        ok=max(0, requests - errors.get("status", 0)),
        errors=non_zero(errors),
        latency_ms=summary,
    )


def run_wrk(
    *,
    url: str,
    paths: list[str],
    body_file: Path,
    auth: str | None,
    concurrency: int,
    duration: float,
    threads: int = 1,
    timeout: float = 10.0,
) -> LoadResult:
    executable = wrk_path()
    if executable is None:
        raise WrkError("wrk is not installed")
    command = [
        executable,
        f"-t{max(1, min(threads, concurrency))}",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={max(1, round(timeout))}s",
        "-s",
        str(SCRIPT),
        url.rstrip("/") + paths[0],
    ]
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_PATHS": ",".join(paths), "BENCH_AUTH": auth or ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + timeout + 30)
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk_output(done.stdout, concurrency)
