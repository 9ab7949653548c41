"""A bounded load test on loopback: a mixed workload against a real ``switchboard serve`` (PostgreSQL and Redis,
the production path), the fake upstream standing in for the providers; then a graceful shutdown, and the books
balanced.

Several users, each with several API keys, send for ``--seconds`` a weighted mix of OpenAI chat completions
(``/v1/chat/completions``), Anthropic messages (``/v1/messages``), both whole and streamed, OpenAI embeddings
(``/v1/embeddings``) and conversation messages, whole and streamed (``/api/v1/conversations/{id}/messages``); see
``bench.workload``. Each worker waits for its call's answer before sending the next and sends nothing after the
deadline; the calls in flight then finish. The server gets SIGTERM (it writes its usage buffer on the way out), and:

* every call was answered 2xx with the answer expected (no 4xx, no 5xx, no transport error, every stream ended with
  its API's final event);
* the usage records are exactly the calls answered, kind by kind, and exactly the answers the fake upstream served,
  endpoint by endpoint: nothing lost, nothing billed twice;
* the server exited 0.

``make loadtest`` runs it for 60 s (``LOADTEST_ARGS="--seconds 300 --concurrency 32"``); the test suite runs a
10 s variant (``tests/api/test_load_e2e.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

from bench import target
from bench.procs import free_port, start_switchboard, start_upstream
from bench.storage import Storage, open_storage
from bench.workload import (
    CHAT_MODEL,
    CLAUDE_MODEL,
    EMBED_MODEL,
    KINDS,
    UPSTREAM_PATHS,
    Caller,
    LoadReport,
    generate,
    kind_of_record,
)

REPO = Path(__file__).resolve().parents[1]
CATALOG = """\
# Written by the load test: every model is served by the fake upstream at {base}.
default_model = "{chat}"

[models.{chat}]
provider = "openai"
upstream_model = "gpt-4o-mini"
base_url = "{base}/v1"
api_key_env = "{key_env}"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60
timeout_seconds = 30

[models.{claude}]
provider = "anthropic"
upstream_model = "claude-haiku-4-5"
base_url = "{base}"
api_key_env = "{key_env}"
input_usd_per_mtok = 1.00
output_usd_per_mtok = 5.00
timeout_seconds = 30

[models.{embed}]
kind = "embedding"
provider = "openai"
upstream_model = "text-embedding-3-small"
base_url = "{base}/v1"
api_key_env = "{key_env}"
input_usd_per_mtok = 0.02
"""


@dataclass
class LoadTestConfig:
    workdir: Path
    database_url: str
    redis_url: str | None
    storage: str = "PostgreSQL + Redis"
    seconds: float = 10.0
    users: int = 3
    keys_per_user: int = 2
    concurrency: int = 12
    upstream_delay_ms: float = 5.0
    upstream_chunk_delay_ms: float = 2.0
    extra_env: dict[str, str] = field(default_factory=dict)
    seed: int = 0


@dataclass
class UsageBook:
    """The usage records the server wrote."""

    total: int
    by_kind: Counter[str]
    by_model: Counter[str]
    statuses: Counter[str]
    cached: int


@dataclass
class LoadTestResult:
    config: LoadTestConfig
    report: LoadReport
    usage: UsageBook
    served: dict[str, int]
    """Answers the fake upstream served, by its endpoint."""
    exit_code: int | None
    shutdown_seconds: float

    def problems(self) -> list[str]:
        """Everything that does not balance; empty when the run passed."""
        found = []
        if self.report.calls == 0:
            found.append("no call was made")
        for name, tally in self.report.tallies.items():
            for count, what in (
                (tally.server_errors, "5xx"),
                (tally.client_errors, "4xx"),
                (tally.transport_errors, "transport errors"),
                (tally.bad_answers, "wrong answers or unfinished streams"),
            ):
                if count:
                    found.append(f"{name}: {count} {what}")
            if self.usage.by_kind[name] != tally.answered:
                found.append(f"{name}: {self.usage.by_kind[name]} usage records for {tally.answered} calls answered")
        for model, path in UPSTREAM_PATHS.items():
            if self.usage.by_model[model] != self.served.get(path, 0):
                served = self.served.get(path, 0)
                found.append(f"{path}: {self.usage.by_model[model]} usage records for {served} answers served")
        if self.usage.total != sum(self.served.values()):
            found.append(f"{self.usage.total} usage records for {sum(self.served.values())} upstream answers")
        if set(self.usage.statuses) - {"success"} or self.usage.cached:
            found.append(f"usage statuses {dict(self.usage.statuses)}, {self.usage.cached} cached")
        if self.exit_code != 0:
            found.append(f"the server exited {self.exit_code}")
        return found


async def run(config: LoadTestConfig) -> LoadTestResult:
    """Starts the fake upstream and Switchboard, creates the users, sends the load, stops the server, counts."""
    work = config.workdir
    upstream = await asyncio.to_thread(
        start_upstream,
        sys.executable,
        REPO,
        work / "upstream.log",
        delay_ms=config.upstream_delay_ms,
        chunk_delay_ms=config.upstream_chunk_delay_ms,
    )
    try:
        env = _environment(config, _write_catalog(work, upstream.url))
        server = await asyncio.to_thread(
            start_switchboard, sys.executable, work, work / "switchboard.log", env, port=free_port(), timeout=120
        )
        try:
            callers = await create_callers(server.url, config)
            report = await generate(server.url, callers, seconds=config.seconds, seed=config.seed)
        finally:
            stopping = time.monotonic()
            exit_code = await asyncio.to_thread(server.stop, 60)
            shutdown_seconds = time.monotonic() - stopping
        async with httpx.AsyncClient(base_url=upstream.url, timeout=10) as http:
            served = (await http.get("/_fake/stats")).json()["served_by_path"]
    finally:
        await asyncio.to_thread(upstream.stop)
    usage = await count_usage(config.database_url)
    return LoadTestResult(config, report, usage, served, exit_code, shutdown_seconds)


def _write_catalog(directory: Path, upstream_url: str) -> Path:
    path = directory / "catalog.toml"
    text = CATALOG.format(
        base=upstream_url, chat=CHAT_MODEL, claude=CLAUDE_MODEL, embed=EMBED_MODEL, key_env=target.UPSTREAM_KEY_ENV
    )
    path.write_text(text, encoding="utf-8")
    return path


def _environment(config: LoadTestConfig, catalog: Path) -> dict[str, str]:
    """The benchmark's production-path environment (rate limits on, out of reach), on this run's storage."""
    storage = Storage("postgresql" if config.database_url.startswith("postgresql") else "sqlite", config.database_url)
    storage.redis_url = config.redis_url
    extra = {"SWITCHBOARD_RATE_LIMIT_USER_TPM": str(target.BENCH_RPM), **config.extra_env}
    env, _ = target.switchboard_env(
        dict(os.environ),
        storage=storage,
        catalog=catalog,
        repo=REPO,
        history_limit=20,
        log_level="WARNING",
        fields=target.settings_fields(),
        extra=extra,
    )
    return env


async def create_callers(url: str, config: LoadTestConfig) -> list[Caller]:
    """``users`` users with ``keys_per_user`` API keys each, through the API; one caller per worker, spread over
    the users and their keys, each with a conversation of its own (on either model, in turn)."""
    keys: list[list[str]] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for user in range(config.users):
            email = f"load{user}@example.com"
            _expect(await http.post("/api/v1/auth/register", json={"email": email, "password": target.PASSWORD}), 201)
            form = {"username": email, "password": target.PASSWORD}
            token = _expect(await http.post("/api/v1/auth/token", data=form), 200)["access_token"]
            jwt = {"Authorization": f"Bearer {token}"}
            keys.append(
                [
                    _expect(await http.post("/api/v1/api-keys", json={"name": f"load {n}"}, headers=jwt), 201)["key"]
                    for n in range(config.keys_per_user)
                ]
            )
        callers = []
        for worker in range(config.concurrency):
            key = keys[worker % config.users][(worker // config.users) % config.keys_per_user]
            body = {"title": f"load {worker}", "model": (CHAT_MODEL, CLAUDE_MODEL)[worker % 2]}
            created = await http.post("/api/v1/conversations", json=body, headers={"Authorization": f"Bearer {key}"})
            callers.append(Caller(key, _expect(created, 201)["id"]))
    return callers


def _expect(response: httpx.Response, status: int) -> dict[str, str]:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.url.path} answered {response.status_code}: {response.text[:300]}")
    data: dict[str, str] = response.json()
    return data


USAGE_QUERY = (
    "SELECT model, streamed, conversation_id IS NOT NULL, status, cached, count(*) FROM usage_records "
    "GROUP BY model, streamed, conversation_id IS NOT NULL, status, cached"
)


async def count_usage(database_url: str) -> UsageBook:
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]
        with contextlib.closing(sqlite3.connect(path)) as connection:
            rows = [tuple(row) for row in connection.execute(USAGE_QUERY)]
    else:
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            rows = [tuple(row) for row in await connection.fetch(USAGE_QUERY)]
        finally:
            await connection.close()
    book = UsageBook(0, Counter(), Counter(), Counter(), 0)
    for model, streamed, conversation, status, cached, count in rows:
        book.total += count
        book.statuses[status] += count
        book.cached += count if cached else 0
        book.by_model[model] += count
        book.by_kind[kind_of_record(model, bool(streamed), bool(conversation))] += count
    return book


def render(result: LoadTestResult) -> str:
    """The run in Markdown: per kind of call, per upstream endpoint, the shutdown, the verdict."""
    config, report = result.config, result.report
    lines = [
        f"{report.seconds:.1f} s of load ({config.seconds:g} s sending, then the calls in flight finished): "
        f"{config.users} users with {config.keys_per_user} API keys each, {config.concurrency} closed-loop workers; "
        f"`switchboard serve` (1 worker) on {config.storage}; the fake upstream with {config.upstream_delay_ms:g} ms "
        f"before each answer and {config.upstream_chunk_delay_ms:g} ms between stream events.",
        "",
        "| calls | count | per s | 2xx | 4xx | 5xx | transport errors | wrong answers | p50 ms | p99 ms "
        "| usage records |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [(kind.name, report.tallies[kind.name], result.usage.by_kind[kind.name]) for kind in KINDS]
    rows.append(("**all**", report.total(), result.usage.total))
    for name, tally, records in rows:
        summary = tally.summary() or {}
        cells = [name, tally.calls, f"{tally.calls / report.seconds:.1f}", tally.answered, tally.client_errors]
        cells += [tally.server_errors, tally.transport_errors, tally.bad_answers]
        cells += [f"{summary.get('p50', 0):.1f}", f"{summary.get('p99', 0):.1f}", records]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "| upstream endpoint | answers served | usage records |", "| --- | --- | --- |"]
    for model, path in UPSTREAM_PATHS.items():
        lines.append(f"| `{path}` | {result.served.get(path, 0)} | {result.usage.by_model[model]} |")
    problems = result.problems()
    lines += [
        "",
        f"SIGTERM after the load: exit {result.exit_code} in {result.shutdown_seconds:.1f} s; "
        f"{result.usage.total} usage records for {sum(result.served.values())} upstream answers.",
        "",
        "**Balanced**: every call answered, billed exactly once." if not problems else "**Problems**:",
        *[f"- {p}" for p in problems],
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the workers send (default 60)")
    parser.add_argument("--concurrency", type=int, default=12, help="closed-loop workers (default 12)")
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--keys-per-user", type=int, default=2)
    parser.add_argument("--upstream-delay-ms", type=float, default=5.0)
    parser.add_argument("--upstream-chunk-delay-ms", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sb-loadtest-") as directory:
        workdir = Path(directory)
        storage = open_storage(workdir, want_postgres=True, want_redis=True)
        prefix = f"sbload:{uuid.uuid4().hex[:12]}:"
        try:
            config = LoadTestConfig(
                workdir=workdir,
                database_url=storage.database_url,
                redis_url=storage.redis_url,
                storage=storage.describe(),
                seconds=args.seconds,
                users=args.users,
                keys_per_user=args.keys_per_user,
                concurrency=args.concurrency,
                upstream_delay_ms=args.upstream_delay_ms,
                upstream_chunk_delay_ms=args.upstream_chunk_delay_ms,
                extra_env={"SWITCHBOARD_REDIS_KEY_PREFIX": prefix},
                seed=args.seed,
            )
            for note in storage.notes:
                print(f"note: {note}", file=sys.stderr)
            result = asyncio.run(run(config))
        finally:
            storage.drop()
            if storage.redis_url:
                asyncio.run(_delete_keys(storage.redis_url, prefix))
    print(render(result))
    return 1 if result.problems() else 0


async def _delete_keys(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


if __name__ == "__main__":
    sys.exit(main())
