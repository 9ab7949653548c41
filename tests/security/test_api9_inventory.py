"""API9:2023 Improper inventory management: the OpenAPI document is the complete, versioned inventory.

Every route the app serves is in it (nothing hidden, no debug or legacy endpoints), everything under a version
prefix or the health probes, every operation states its error responses as problem details, and every
authenticated operation says so.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount, Route

from tests.api.conftest import Api

pytestmark = pytest.mark.api
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# Sub-applications with an inventory of their own: the OpenAI- and Anthropic-compatible API, documented in the README
# (its shapes are the providers' own), served without docs of its own.
KNOWN_MOUNTS = {"/v1"}
PUBLIC = {"/health/live", "/health/ready", "/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/auth/refresh",
          "/api/v1/auth/logout"}  # fmt: skip


def _served(routes: list[BaseRoute], prefix: str = "") -> tuple[set[tuple[str, str]], set[str]]:
    """The (method, path) pairs of the API routes, and the paths of the plain ones, through included routers.

    FastAPI 0.16x keeps included routers as lazily expanded nodes (``original_router`` with its include prefix).
    """
    api_routes: set[tuple[str, str]] = set()
    plain: set[str] = set()
    for route in routes:
        if isinstance(route, APIRoute):
            api_routes |= {(method, prefix + route.path) for method in route.methods}
        elif isinstance(route, Route):
            plain.add(prefix + route.path)
        elif isinstance(route, Mount):
            assert route.path in KNOWN_MOUNTS, f"an unknown sub-application is mounted at {route.path}"
            assert getattr(route.app, "openapi_url", None) is None, f"{route.path} serves a second, unlisted document"
        elif hasattr(route, "original_router"):
            child_prefix = prefix + getattr(getattr(route, "include_context", None), "prefix", "")
            child_api, child_plain = _served(route.original_router.routes, child_prefix)
            api_routes |= child_api
            plain |= child_plain
        else:
            raise AssertionError(f"unknown kind of route: {route!r}")
    return api_routes, plain


async def _document(api: Api) -> dict[str, Any]:
    return (await api.http.get("/openapi.json")).json()  # type: ignore[no-any-return]


async def test_every_served_route_is_documented_and_versioned(api: Api) -> None:
    document = await _document(api)
    served, non_api = _served(api.app.routes)
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert len(served) >= 18
    # The Prometheus scrape endpoint is the operator's, not part of the API contract: deliberately undocumented.
    assert served - {("GET", "/metrics")} == documented
    assert non_api <= DOCS
    for _, path in documented:
        assert path.startswith(("/api/v1/", "/health/")), path


async def test_every_operation_documents_its_errors_as_problems(api: Api) -> None:
    document = await _document(api)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            if path.startswith("/health"):
                continue
            errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
            assert {"422", "503"} <= errors.keys() or method == "get", (method, path, sorted(errors))
            assert "503" in errors, (method, path)
            for status, response in errors.items():
                assert "application/problem+json" in response["content"], (method, path, status)


async def test_authenticated_operations_say_so(api: Api) -> None:
    document = await _document(api)
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            secured = bool(operation.get("security"))
            assert secured == (path not in PUBLIC), (method, path)
            if secured:
                assert "401" in operation["responses"], (method, path)


async def test_the_document_names_the_service_version(api: Api) -> None:
    info = (await _document(api))["info"]
    assert info["title"] == "Switchboard"
    assert info["version"]
