"""CPU per request measured in one process, for A/B comparisons on a busy machine.

    python -m bench.inproc [--scenario d|b] [--requests 2000] [--profile out.prof] [--repo ../baseline]

The app runs in this process on the production path (PostgreSQL, Redis and the fake upstream, as ``make bench``
starts them) and requests go to it straight through ASGI (httpx's ``ASGITransport``: no sockets, no uvicorn), one at
a time. Printed per request: CPU time (``time.process_time``, which counts only the time this process ran, so other
processes on the machine inflate it far less than they inflate wall-clock figures) and Python function calls
(counted by ``cProfile`` over a further quarter of the requests: deterministic for a given code path, so a fair
proxy for work done when the machine is too busy for timings). The same client runs on both sides of an A/B, so its
own share cancels out in a comparison. ``--repo`` imports Switchboard from another checkout (a baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("b", "d"), default="d")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--history", type=int, default=20, help="history limit and seeded messages for (d)")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the window here")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to import Switchboard from")
    return parser


async def _drive(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    import httpx
    from asgi_lifespan import LifespanManager

    from bench import target
    from infrastructure.settings import Settings
    from interfaces.http.app import create_app

    for name in [n for n in os.environ if n.startswith("SWITCHBOARD_")]:
        del os.environ[name]
    os.environ.update(env)  # Settings() reads them, and the catalog's upstream key
    app = create_app(Settings())
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            email = "inproc@example.com"
            await http.post("/api/v1/auth/register", json={"email": email, "password": target.PASSWORD})
            token = (
                await http.post("/api/v1/auth/token", data={"username": email, "password": target.PASSWORD})
            ).json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            key = (await http.post("/api/v1/api-keys", json={"name": "inproc"}, headers=bearer)).json()["key"]
            auth = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
            if args.scenario == "d":
                cid = (await http.post("/api/v1/conversations", json={}, headers=auth)).json()["id"]
                path = f"/api/v1/conversations/{cid}/messages"
                body = b'{"content": "%s", "temperature": 0.7, "max_tokens": 32}' % target.PROMPT.encode()
            else:
                path = "/v1/chat/completions"
                body = (
                    b'{"model": "%s", "messages": [{"role": "user", "content": "%s"}], "max_tokens": 32, '
                    b'"temperature": 0.7}' % (target.MODEL.encode(), target.PROMPT.encode())
                )
            for _ in range(args.warmup):
                response = await http.post(path, content=body, headers=auth)
                assert response.status_code in (200, 201), response.text
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for _ in range(args.requests):
                await http.post(path, content=body, headers=auth)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            profiled = max(args.requests // 4, 1)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(profiled):
                await http.post(path, content=body, headers=auth)
            profiler.disable()
    stats = pstats.Stats(profiler)
    if args.profile:
        stats.dump_stats(str(args.profile))
    calls = stats.total_calls / profiled  # type: ignore[attr-defined]
    return {"cpu_ms": 1000 * cpu / args.requests, "wall_ms": 1000 * wall / args.requests, "calls": calls}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sys.path.insert(0, str(args.repo.resolve()))
    from bench import target
    from bench.procs import start_upstream
    from bench.storage import open_storage

    work = Path(tempfile.mkdtemp(prefix="sb-inproc-"))
    storage = open_storage(work)
    upstream = start_upstream(sys.executable, REPO, work / "upstream.log")
    try:
        catalog = target.write_catalog(work, upstream.url)
        env, _ = target.switchboard_env(
            dict(os.environ),
            storage=storage,
            catalog=catalog,
            repo=args.repo,
            history_limit=args.history,
            log_level="WARNING",
            fields=target.settings_fields(),
            extra={},
        )
        migrate = [sys.executable, "-m", "interfaces.cli", "migrate"]
        subprocess.run(migrate, cwd=args.repo, env=env, check=True, capture_output=True)
        result = asyncio.run(_drive(args, env))
    finally:
        upstream.stop()
        storage.drop()
    print(
        f"scenario {args.scenario}: {result['cpu_ms']:.3f} ms CPU/req, {result['calls']:.0f} Python calls/req, "
        f"{result['wall_ms']:.3f} ms wall/req, {args.requests} requests"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
