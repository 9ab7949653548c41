"""The ``switchboard`` command: migrate, serve, create-admin, rotate-credentials, new-credential-key.

Imports of the application happen inside the commands: with ``serve --workers N`` every worker process re-imports
this module before it can answer the supervisor's health check, so the module itself must import fast.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import getpass
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from infrastructure.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 1 << 20
WORKER_HEALTHCHECK_SECONDS = 30  # a worker importing the app on a busy machine must not be taken for hung
LEFTOVER_TASK_SECONDS = 5.0  # how long a drained worker process waits for tasks it did not start to end


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    from infrastructure.db.migrate import upgrade_to_head

    asyncio.run(upgrade_to_head(settings.database_url))
    print(f"database migrated to head ({_redacted(settings.database_url)})")
    return 0


def _metrics_directory(workers: int) -> None:
    """Several workers share their metrics through files (prometheus-client's multiprocess mode): an empty directory,
    ``PROMETHEUS_MULTIPROC_DIR`` if set, else a new temporary one. Stale files of a previous run are removed."""
    configured = os.environ.get(MULTIPROC_ENV)
    if workers == 1 and not configured:
        return
    directory = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="switchboard-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)  # inherited by the worker processes, which import it fresh


def return_large_blocks() -> bool:
    """Makes glibc give blocks of a MiB and more back to the system when they are freed; whether it could.

    glibc raises its mmap threshold to the size of any large block freed (up to 32 MiB): after the first password
    hash, argon2's next work area (19 MiB at OWASP's minimum, ``SWITCHBOARD_ARGON2_MEMORY_KIB=19456``) comes from
    the heap instead, and about 19 MB stays resident for the life of the process. A fixed threshold keeps such
    blocks mapped and returned; Python's own small objects and its 1 MiB arenas are not affected. Elsewhere (musl,
    macOS) nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    return mallopt is not None and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1


def server_app() -> FastAPI:
    """The app as ``serve`` runs it in each worker process: ``create_app``, and a prompt exit once drained.

    After the server has drained and closed everything, the interpreter's last garbage collections walk the whole
    heap the provider SDKs and their models built: about a second, spent after the graceful shutdown period, which an
    orchestrator counts. Freezing the heap at exit skips only those passes: the app has already closed its pools and
    written its usage records, and exit handlers and reference-counted finalizers still run.
    """
    from interfaces.http.app import create_app

    return_large_blocks()
    atexit.register(gc.freeze)
    app = create_app()
    # Everything built so far (modules, the app, its container) lives as long as the process: frozen, the collector
    # stops walking it, so a full collection during traffic scans only what requests allocate. Unfrozen, those
    # passes stalled the event loop for over 100 ms every few seconds (the benchmark's p99 at concurrency 1).
    gc.collect()
    gc.freeze()
    return app


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from infrastructure.llm.catalog import load_catalog
    from interfaces.http.connection_limits import server_options
    from interfaces.telemetry import configure_logs

    configure_logs(settings, load_catalog(settings.catalog_path))
    if args.migrate:
        # In a child process: Alembic (~13 MiB) never stays in the memory of a server that only needed it once.
        migrated = subprocess.run([sys.executable, "-m", "interfaces.cli", "migrate"], check=False)
        if migrated.returncode != 0:
            return migrated.returncode  # the child said why
    workers = args.workers or settings.workers
    grace = args.graceful_timeout or settings.graceful_shutdown_seconds
    os.environ["SWITCHBOARD_GRACEFUL_SHUTDOWN_SECONDS"] = str(grace)  # the app ends its streams before the cut
    _metrics_directory(workers)
    # uvicorn drains on SIGTERM/SIGINT, restores the previous handlers and re-raises the signal. With these no-op
    # handlers in place, a drained shutdown returns normally and the process exits 0, as supervisors expect.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    uvicorn.run(
        "interfaces.cli:server_app",
        factory=True,
        host=args.host if args.host is not None else settings.host,  # a flag wins; else the settings decide
        port=args.port if args.port is not None else settings.port,
        workers=workers,
        log_config=None,  # the app's structured logging, not uvicorn's
        log_level=settings.log_level.lower(),
        access_log=False,
        server_header=False,  # no software banner for scanners  # the app writes one access line per request itself
        proxy_headers=False,  # X-Forwarded-For is honoured by the app, from SWITCHBOARD_TRUSTED_PROXIES only
        timeout_graceful_shutdown=grace,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        **server_options(settings),  # header size, header and body read deadlines, keep-alive idle time
    )
    return 0


def _worker(settings: Settings, _: argparse.Namespace) -> int:
    """A job worker (batches) as a process of its own: as many as needed, on any machine that reaches the database.
    SIGTERM or SIGINT drains it like the server: running jobs finish the lines they hold, within the grace period."""
    from infrastructure.observability.logging import get_logger
    from interfaces.container import Container, close_resources
    from interfaces.jobs import run_worker
    from interfaces.telemetry import configure_logs

    return_large_blocks()
    container = Container(settings=settings)
    configure_logs(settings, container.catalog())
    log = get_logger("switchboard.worker")

    async def run() -> None:
        await container.usage_recorder().start()  # what a crashed worker left in the journal reaches the ledger
        worker = asyncio.create_task(run_worker(container))
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, worker.cancel)
        log.info("worker started", pid=os.getpid())
        try:
            await worker
        except asyncio.CancelledError:
            log.info("worker drained")
        finally:  # however the worker ended
            await close_resources(container)
            stuck = await end_leftover_tasks(LEFTOVER_TASK_SECONDS)
            if stuck:  # asyncio.run would wait for them forever: say which, and exit without them
                log.error("tasks ignored their cancellation; exiting without them", tasks=sorted(stuck))
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(1)

    asyncio.run(run())
    return 0


async def end_leftover_tasks(seconds: float) -> list[str]:
    """Cancels the loop's other tasks (a library's, left behind), again and again: a task that swallowed one
    cancellation, as an open psycopg pool's workers do while they connect, ends at the next, where ``asyncio.run``,
    which cancels once, would wait for it forever. Returns the names of those still running after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    current = asyncio.current_task()
    while left := [task for task in asyncio.all_tasks() if task is not current and not task.done()]:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return [task.get_name() for task in left]
        for task in left:
            task.cancel()
        await asyncio.wait(left, timeout=min(0.5, remaining))
    return []


def _create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from application.auth.register_user import RegisterUserCommand
    from domain.auth.model import Role
    from interfaces.container import Container, close_resources

    password = os.environ.get("SWITCHBOARD_ADMIN_PASSWORD") or getpass.getpass("Password for the admin: ")

    async def run() -> None:
        container = Container(settings=settings)
        try:
            user = await container.register_user().execute(
                RegisterUserCommand(email=args.email, password=password, role=Role.ADMIN)
            )
            print(f"admin created: {user.email} ({user.id})")
        finally:
            await close_resources(container)

    asyncio.run(run())
    return 0


def _rotate_credentials(settings: Settings, _: argparse.Namespace) -> int:
    """Re-encrypts every stored provider credential under the first of SWITCHBOARD_CREDENTIAL_KEYS."""
    from interfaces.container import Container, close_resources

    async def run() -> None:
        container = Container(settings=settings)
        try:
            report = await container.rotate_provider_credentials().execute()
            print(f"provider credentials: {report.examined} examined, {report.re_encrypted} re-encrypted")
        finally:
            await close_resources(container)

    asyncio.run(run())
    return 0


def _new_credential_key(_: Settings, __: argparse.Namespace) -> int:
    from infrastructure.security.credential_keys import new_key

    print(new_key())
    return 0


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description="Switchboard LLM gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations up to the newest")
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="bind address (default: SWITCHBOARD_HOST)")
    serve.add_argument("--port", type=int, help="port (default: SWITCHBOARD_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (default: SWITCHBOARD_WORKERS)")
    serve.add_argument(
        "--graceful-timeout",
        type=int,
        help="seconds to drain on shutdown (default: SWITCHBOARD_GRACEFUL_SHUTDOWN_SECONDS)",
    )
    serve.add_argument("--migrate", action="store_true", help="apply migrations before serving")
    commands.add_parser("worker", help="run a job worker (batches) until SIGTERM")
    admin = commands.add_parser("create-admin", help="create an administrator (password from prompt or env)")
    admin.add_argument("--email", required=True)
    commands.add_parser(
        "rotate-credentials",
        help="re-encrypt every stored provider credential under the first of SWITCHBOARD_CREDENTIAL_KEYS",
    )
    commands.add_parser("new-credential-key", help="print a fresh key for SWITCHBOARD_CREDENTIAL_KEYS")
    reference = commands.add_parser("settings-reference", help="print the configuration reference (Markdown)")
    reference.add_argument("--write", metavar="README", help="replace the reference inside this file instead")
    return parser


def _settings_reference(_: Settings, args: argparse.Namespace) -> int:
    from interfaces.settings_reference import render_into, settings_table

    if args.write:
        readme = Path(args.write)
        readme.write_text(render_into(readme.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(settings_table())
    return 0


HANDLERS = {
    "migrate": _migrate,
    "serve": _serve,
    "worker": _worker,
    "create-admin": _create_admin,
    "rotate-credentials": _rotate_credentials,
    "new-credential-key": _new_credential_key,
    "settings-reference": _settings_reference,
}


def main(argv: Sequence[str] | None = None) -> int:
    from domain.shared.errors import DomainError
    from infrastructure.llm.catalog import CatalogError, load_catalog
    from infrastructure.settings import SettingsError, load_settings

    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        load_catalog(settings.catalog_path)  # a bad catalog stops every command, not only the server
        return HANDLERS[args.command](settings, args)
    except (SettingsError, CatalogError) as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"switchboard: {exc.detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
