"""Everything a measurement needs, started in order and torn down in reverse: storage, the fake upstream,
Switchboard, a user with an API key, conversations, and the scenarios' targets (probed)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench import target
from bench.procs import Process, free_port, start_switchboard, start_upstream
from bench.storage import Storage, open_storage

COMPLETIONS = "/v1/chat/completions"


@dataclass(frozen=True)
class Target:
    """What the load generator hits for one scenario, and which process serves it."""

    sid: str
    url: str
    paths: list[str]
    body_file: Path
    auth: str | None
    pid: int
    streaming: bool
    accounts_usage: bool
    """Calls through Switchboard's gateway, which write usage records (when the build has them)."""


@dataclass
class StackOptions:
    repo: Path
    python: str
    workdir: Path
    postgres: bool = True
    redis: bool = True
    history_limit: int = 20
    log_level: str = "WARNING"
    conversations: int = 16
    seed_exchanges: int = 10
    upstream_delay_ms: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)
    server_cpus: str | None = None
    """``taskset -c`` CPUs for Switchboard (the harness pins itself, the fake upstream and the load to the rest)."""
    server_repo: Path | None = None
    """Another checkout to serve from (its own ``.venv``), for A/B runs against a baseline; default ``repo``."""


@dataclass
class Stack:
    storage: Storage
    upstream: Process
    switchboard: Process
    targets: dict[str, Target]
    unavailable: dict[str, str]
    """Scenario id → why it is not measured."""
    notes: list[str]
    features: list[str]
    """Settings of rate limits, budgets, usage accounting and caching this build has (left at their defaults)."""
    exit_codes: dict[str, int | None] = field(default_factory=dict)


def _openai_body(model: str, *, stream: bool) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": target.PROMPT}],
        "max_tokens": 32,
        "temperature": 0.7,  # not 0: a response cache, where there is one, must not answer for the upstream
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


@contextlib.contextmanager
def running_stack(options: StackOptions) -> Iterator[Stack]:
    work = options.workdir
    notes: list[str] = []
    with contextlib.ExitStack() as cleanup:
        storage = open_storage(work, want_postgres=options.postgres, want_redis=options.redis)
        cleanup.callback(storage.drop)
        notes += storage.notes
        upstream = start_upstream(
            options.python, options.repo, work / "upstream.log", delay_ms=options.upstream_delay_ms
        )
        exit_codes: dict[str, int | None] = {}
        cleanup.callback(lambda: exit_codes.__setitem__("fake-upstream", upstream.stop()))

        catalog = target.write_catalog(work, upstream.url)
        fields = target.settings_fields()
        server_repo = options.server_repo or options.repo
        server_python = str(server_repo / ".venv" / "bin" / "python") if options.server_repo else options.python
        env, env_notes = target.switchboard_env(
            dict(os.environ),
            storage=storage,
            catalog=catalog,
            repo=server_repo,
            history_limit=options.history_limit,
            log_level=options.log_level,
            fields=fields,
            extra=options.extra_env,
        )
        notes += env_notes
        if "SWITCHBOARD_REDIS_URL" not in env:
            storage.redis_url = None  # reachable, but this build has no setting for it
        server = start_switchboard(
            server_python, work, work / "switchboard.log", env, port=free_port(), cpus=options.server_cpus
        )
        cleanup.callback(lambda: exit_codes.__setitem__("switchboard", server.stop()))

        targets, unavailable = _targets(options, upstream, server)
        features = target.feature_settings(fields)
        yield Stack(storage, upstream, server, targets, unavailable, notes, features, exit_codes)


def _targets(options: StackOptions, upstream: Process, server: Process) -> tuple[dict[str, Target], dict[str, str]]:
    work = options.workdir
    principal = target.create_principal(server.url, "bench@example.com")
    key = principal.api_key
    direct, direct_stream = (_openai_body(target.UPSTREAM_MODEL, stream=s) for s in (False, True))
    gateway, gateway_stream = (_openai_body(target.MODEL, stream=s) for s in (False, True))
    message = orjson.dumps({"content": target.PROMPT, "temperature": 0.7, "max_tokens": 32})
    candidates = {
        "a": (upstream, [COMPLETIONS], direct, target.UPSTREAM_KEY, False),
        "a-stream": (upstream, [COMPLETIONS], direct_stream, target.UPSTREAM_KEY, True),
        "b": (server, [COMPLETIONS], gateway, key, False),
        "c": (server, [COMPLETIONS], gateway_stream, key, True),
    }
    targets: dict[str, Target] = {}
    unavailable: dict[str, str] = {}
    for sid, (process, paths, body, auth, streaming) in candidates.items():
        checked = target.probe(process.url, paths[0], body, auth)
        if not checked.available:
            unavailable[sid] = checked.note
            continue
        body_file = _write(work, f"{sid}.json", body)
        is_gateway = process is server
        targets[sid] = Target(sid, process.url, paths, body_file, auth, process.pid, streaming, is_gateway)
    conversations = target.create_conversations(
        server.url, key, options.conversations, seed_messages=options.seed_exchanges
    )
    paths = [f"/api/v1/conversations/{cid}/messages" for cid in conversations]
    checked = target.probe(server.url, paths[0], message, key)
    if checked.available:
        targets["d"] = Target("d", server.url, paths, _write(work, "d.json", message), key, server.pid, False, True)
    else:
        unavailable["d"] = checked.note
    return targets, unavailable
