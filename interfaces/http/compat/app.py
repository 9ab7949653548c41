"""The ``/v1`` sub-application: OpenAI's and Anthropic's endpoints with their own error shapes.

A mounted application of its own, so that its errors never take the problem+json shape of ``/api`` and an unknown
``/v1`` path is answered as the API the client speaks would. It shares the parent's container and middleware.
"""

from __future__ import annotations

from fastapi import FastAPI

from interfaces.http.compat import anthropic, auth, models, openai
from interfaces.http.compat.errors import register_compat_error_handlers

WIRED_MODULES = [auth, anthropic, models, openai]
PREFIX = "/v1"


def create_compat_app() -> FastAPI:
    app = FastAPI(
        title="Switchboard: OpenAI- and Anthropic-compatible API", docs_url=None, redoc_url=None, openapi_url=None
    )
    for module in (anthropic, models, openai):
        app.include_router(module.router)
    register_compat_error_handlers(app)
    return app
