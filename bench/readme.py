"""Copies a results table (default: ``bench/results/latest.md``) into the README between the bench markers.

python -m bench.readme [--results bench/results/latest.md] [--readme README.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.report import render_markdown, replace_between_markers

REPO = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "latest.md")
    parser.add_argument("--json", type=Path, help="render from this run's JSON instead")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = parser.parse_args(argv)
    source: Path = args.json or args.results
    if not source.exists():
        print(f"no results at {source}: run `make bench` first", file=sys.stderr)
        return 1
    if args.json:
        table = render_markdown(json.loads(source.read_text(encoding="utf-8")))
        source.with_suffix(".md").write_text(table, encoding="utf-8")
    else:
        table = source.read_text(encoding="utf-8")
    text = args.readme.read_text(encoding="utf-8")
    try:
        updated = replace_between_markers(text, table)
    except ValueError as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 1
    args.readme.write_text(updated, encoding="utf-8")
    print(f"{args.readme.name}: performance section updated from {source.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
