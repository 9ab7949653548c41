"""Profiles Switchboard under load with py-spy and prints where its CPU goes (the numbers behind bench/PROFILE.md).

    python -m bench.profile [--scenario d] [--concurrency 16] [--seconds 20] [--py-spy "uvx --from py-spy py-spy"]

It starts the same stack as ``bench.run``, drives the scenario for ``--seconds`` while ``py-spy record`` samples the
server, keeps the collapsed stacks in ``bench/results/profile-<scenario>-<time>.txt`` (speedscope and flamegraph.pl
read them), and prints the functions with the most samples: by self time (where the CPU is spent) and inclusive
(what it is spent for).
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import Loader
from bench.report import TITLES
from bench.run import REPO, RESULTS
from bench.stack import StackOptions, running_stack

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
# Leaves of threads that are only waiting (anyio's and asyncio's thread pools): py-spy reports them as active.
IDLE_LEAVES = ("Condition.wait (threading.py)", "_worker (concurrent/futures/thread.py)", "Event.wait (threading.py)")
OWN_CODE = ("(interfaces/", "(application/", "(infrastructure/", "(domain/")


def parse_collapsed(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """``frame;frame;frame count`` lines (py-spy ``--format raw``) as (frames root first, samples)."""
    stacks = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        frames, _, count = line.rpartition(" ")
        stacks.append((frames.split(";"), int(count)))
    return stacks


def frame_name(frame: str, root: str = "") -> str:
    """``func (path/to/file.py:12)`` → ``func (file path relative to site-packages or the repo)``, line dropped."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.11/", "lib/python3.12/", "lib/python3.13/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        if root and path.startswith(root):
            path = path[len(root) :].lstrip("/")
    return f"{match['func']} ({path})"


def split_idle(stacks: list[tuple[list[str], int]], root: str = "") -> tuple[list[tuple[list[str], int]], int]:
    """The stacks of threads doing something, and the number of samples of threads only waiting."""
    busy, idle = [], 0
    for frames, count in stacks:
        if not frames or not frames[0].strip() or frame_name(frames[-1], root) in IDLE_LEAVES:
            idle += count
        else:
            busy.append((frames, count))
    return busy, idle


def top_frames(
    stacks: list[tuple[list[str], int]], root: str = "", n: int = 25
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """Total samples, the ``n`` frames with the most self samples and the ``n`` with the most inclusive samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in stacks:
        total += count
        names = [frame_name(f, root) for f in frames]
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    return total, own.most_common(n), inclusive.most_common(n)


def own_code(stacks: list[tuple[list[str], int]], root: str = "", n: int = 25) -> list[tuple[str, int]]:
    """Inclusive samples of Switchboard's own functions: what each step of a request costs with what it calls."""
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        for name in {frame_name(f, root) for f in frames}:
            if name.endswith(")") and any(marker in name for marker in OWN_CODE) and "cli.py" not in name:
                inclusive[name] += count
    return inclusive.most_common(n)


def by_package(stacks: list[tuple[list[str], int]], root: str = "") -> list[tuple[str, int]]:
    """Self samples grouped by top-level package (``sqlalchemy``, ``asyncpg``, ``openai``, our layers...)."""
    packages: Counter[str] = Counter()
    for frames, count in stacks:
        name = frame_name(frames[-1], root)
        path = name[name.rfind("(") + 1 : -1]
        packages[path.split("/", 1)[0].removesuffix(".py")] += count
    return packages.most_common()


def _table(title: str, rows: list[tuple[str, int]], total: int) -> list[str]:
    lines = [f"{title}:", ""]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in rows]
    return [*lines, ""]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("b", "c", "d"), default="d")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument(
        "--nonblocking", action="store_true", help="do not pause the server to sample (cheaper, but torn stacks)"
    )
    parser.add_argument("--py-spy", default="uvx --from py-spy py-spy", help="how to run py-spy")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--tool", choices=("auto", "wrk", "client"), default="auto")
    parser.add_argument("--top", type=int, default=25)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    loader = Loader.choose(sys.executable, REPO, args.tool)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"profile-{args.scenario}-{stamp}.txt"
    with tempfile.TemporaryDirectory(prefix="sb-profile-") as work:
        options = StackOptions(repo=REPO, python=sys.executable, workdir=Path(work), postgres=not args.no_postgres)
        with running_stack(options) as stack:
            target = stack.targets.get(args.scenario)
            if target is None:
                raise SystemExit(f"{TITLES[args.scenario]}: {stack.unavailable.get(args.scenario)}")
            loader.run(target, args.concurrency, 3)  # warm-up
            spy = shlex.split(args.py_spy)
            record = [*spy, "record", "--pid", str(target.pid), "--rate", str(args.rate)]
            if args.nonblocking:
                record.append("--nonblocking")
            record += ["--duration", str(args.seconds)]
            profiler = subprocess.Popen([*record, "--format", "raw", "--output", str(raw)], stdout=subprocess.DEVNULL)
            load = loader.run(target, args.concurrency, args.seconds + 1)
            profiler.wait(60)
            print(f"{TITLES[args.scenario]} at concurrency {args.concurrency}: {load.rps:.0f} req/s during the profile")
            print(f"storage: {stack.storage.describe()}")
    root = str(REPO)
    stacks, idle = split_idle(parse_collapsed(raw.read_text().splitlines()), root)
    total, own, inclusive = top_frames(stacks, root, args.top)
    print(f"{total} busy samples at {args.rate} Hz over {args.seconds} s ({idle} more of idle pool threads left out)")
    print(f"collapsed stacks: {raw.relative_to(REPO)}; percentages are of the busy samples\n")
    lines = _table("self time by package", by_package(stacks, root)[: args.top], total)
    lines += _table("self time by function", own, total)
    lines += _table("inclusive time in Switchboard's code", own_code(stacks, root, args.top), total)
    lines += _table("inclusive time by function", inclusive, total)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
