"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount

from infrastructure.observability.logging import get_logger
from infrastructure.observability.metrics import mark_process_dead
from infrastructure.settings import Settings, load_settings
from interfaces.container import Container, close_resources
from interfaces.http import errors, health, metrics
from interfaces.http.api_keys import router as api_keys
from interfaces.http.auth import router as auth
from interfaces.http.batches import router as batches
from interfaces.http.compat import app as compat
from interfaces.http.compat import files as compat_files
from interfaces.http.conversations import router as conversations
from interfaces.http.middleware import InFlightRequests, RequestMiddleware, route_templates, walk_routes
from interfaces.http.models import router as models
from interfaces.http.security_headers import SecurityHeadersMiddleware
from interfaces.http.text_guard import NulGuard
from interfaces.http.usage import router as usage
from interfaces.http.users import router as users
from interfaces.jobs import run_worker
from interfaces.telemetry import configure_logs, trace_use_cases

UNWIND_SECONDS = 5.0  # how long requests cancelled at the end of a graceful shutdown get to store and record usage


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """Builds the container (failing fast on a bad catalog), the routes, the middleware and the lifespan."""
    settings = settings or load_settings()
    container = container or Container(settings=settings)
    configure_logs(settings, container.catalog())  # also validates the catalog, before anything logs
    tracer = container.tracing().tracer
    if tracer is not None:
        trace_use_cases(container, tracer)
    container.llm()  # build every provider now, not on the first request
    shutdown = container.shutdown()
    in_flight = InFlightRequests()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log = get_logger("switchboard.lifecycle")
        # Before taking traffic: usage records a crashed process left in the journal reach the ledger, so that the
        # budget counters seeded from it count them.
        await container.usage_recorder().start()
        # Other instances' revocations and log-outs reach this one's auth cache and session denylist.
        for listener in (container.principal_cache(), container.session_revocations()):
            start_listening = getattr(listener, "start", None)
            if start_listening is not None:
                await start_listening()
        # The job worker of the embedded default (its queue lives in this process), or one asked for by settings.
        worker = asyncio.create_task(run_worker(container)) if settings.runs_worker_in_process else None
        log.info("started", pid=os.getpid(), environment=settings.environment)
        try:
            with shutdown.listening():
                yield
        finally:
            if not await in_flight.wait_idle(UNWIND_SECONDS):  # requests uvicorn cancelled are still unwinding
                log.warning("stopping with requests still running", requests=in_flight.count)
            if worker is not None:  # drained: running jobs finish the lines they hold, within the grace period
                worker.cancel()
                try:
                    await worker
                except asyncio.CancelledError:
                    pass
                except Exception:  # the worker's own failure must not keep the server from closing its pools
                    log.exception("the job worker failed")
            log.info("stopping: in-flight requests are done, closing pools")
            await close_resources(container)
            mark_process_dead(os.getpid())

    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        summary="A gateway between applications and LLM providers.",
        lifespan=lifespan,
        docs_url="/docs" if settings.serves_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.serves_docs else None,
    )
    app.state.container = container
    app.state.shutdown = shutdown
    api = APIRouter(prefix="/api/v1")
    for module in (auth, users, api_keys, conversations, models, usage, batches):
        api.include_router(module.router)
    api.include_router(api_keys.admin_router)
    app.include_router(api)
    app.include_router(health.router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    # OpenAI- and Anthropic-compatible, in their error shapes
    compat_app = compat.create_compat_app(docs_enabled=settings.serves_docs)
    compat_app.state.container = container  # its error handlers observe errors like the parent's
    compat_mount = Mount(compat.PREFIX, app=compat_app)
    app.router.routes.append(compat_mount)
    errors.register_error_handlers(app)
    app.state.allowed_methods = errors.AllowedMethods(walk_routes(app.routes))  # a 405's Allow

    app.add_middleware(compat.MountShortcut, mount=compat_mount)  # innermost: /v1 skips the native API's router

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key", "Cache-Control"],
            expose_headers=["X-Request-ID", "Retry-After", "RateLimit", "RateLimit-Policy", "X-Switchboard-Cache"],
        )
    app.add_middleware(NulGuard)  # no text with a NUL gets past the request middleware (which bounds the body)
    app.add_middleware(  # outermost: every response gets the request id, every request is measured
        RequestMiddleware,
        max_body_bytes=settings.max_body_bytes,
        metrics=container.metrics() if settings.metrics_enabled else None,
        tracer=tracer,
        access_log=settings.access_log,
        trusted_proxies=settings.trusted_proxies,
        templates=route_templates(app.routes),
        in_flight=in_flight,
        own_limit_paths=frozenset({compat_files.PATH}),
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.behind_tls)  # CSP and HSTS, on every response
    return app
