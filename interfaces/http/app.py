"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware

from infrastructure.settings import Settings, load_settings
from interfaces.container import Container, close_resources
from interfaces.http import errors, health, security
from interfaces.http.api_keys import router as api_keys
from interfaces.http.auth import router as auth
from interfaces.http.compat import app as compat
from interfaces.http.conversations import router as conversations
from interfaces.http.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from interfaces.http.models import router as models
from interfaces.http.security_headers import SecurityHeadersMiddleware
from interfaces.http.usage import router as usage
from interfaces.http.users import router as users

WIRED_MODULES = [security, auth, users, api_keys, conversations, models, usage, health, *compat.WIRED_MODULES]


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """Builds the container (failing fast on a bad catalog), the routes, the middleware and the lifespan."""
    settings = settings or load_settings()
    container = container or Container(settings=settings)
    container.llm()  # load and validate the model catalog now, not on the first request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container.wire(modules=WIRED_MODULES)
        try:
            yield
        finally:
            await close_resources(container)
            container.unwire()

    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        summary="A gateway between applications and LLM providers.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.container = container
    api = APIRouter(prefix="/api/v1")
    for module in (auth, users, api_keys, conversations, models, usage):
        api.include_router(module.router)
    api.include_router(api_keys.admin_router)
    app.include_router(api)
    app.include_router(health.router)
    app.mount(compat.PREFIX, compat.create_compat_app())  # OpenAI- and Anthropic-compatible, in their error shapes
    errors.register_error_handlers(app)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key", "Cache-Control"],
            expose_headers=["X-Request-ID", "Retry-After", "RateLimit", "RateLimit-Policy", "X-Switchboard-Cache"],
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)  # every response gets the request id
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.behind_tls)  # outermost: even a last-resort 500
    return app
