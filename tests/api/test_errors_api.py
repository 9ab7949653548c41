"""Every bad input gets a problem+json answer with the right status; nothing leaks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dependency_injector import providers

from tests.api.conftest import Api, assert_problem

pytestmark = pytest.mark.api


async def test_request_id_is_echoed_or_generated(api: Api) -> None:
    given = await api.http.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    invalid = await api.http.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert invalid.headers["x-request-id"] != "bad id\twith spaces"
    assert len(invalid.headers["x-request-id"]) == 32


async def test_security_headers_on_every_response(api: Api) -> None:
    for response in (await api.http.get("/health/live"), await api.http.get("/api/v1/users/me")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


async def test_unknown_route_and_method_are_problems(api: Api) -> None:
    assert_problem(await api.http.get("/api/v1/nothing-here"), 404, "not_found")
    assert_problem(await api.http.put("/api/v1/auth/register", json={}), 405, "method_not_allowed")


async def test_malformed_json_and_wrong_types_are_422(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    malformed = await api.http.post("/api/v1/auth/register", content=b'{"email": ', headers=headers)
    assert_problem(malformed, 422, "validation_error")
    wrong = await api.http.post("/api/v1/auth/register", json={"email": ["a"], "password": 12})
    body = assert_problem(wrong, 422, "validation_error")
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "email"), ("body", "password")}
    assert_problem(await api.http.post("/api/v1/auth/register", json=[1, 2]), 422)


async def test_oversize_bodies_are_413(api_with: Callable[..., Any]) -> None:
    async with api_with(max_body_bytes=2048) as api:
        big = {"email": "a@example.com", "password": "x" * 5000}
        assert_problem(await api.http.post("/api/v1/auth/register", json=big), 413, "payload_too_large")

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b"x" * 512

        chunked = await api.http.post(
            "/api/v1/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert_problem(chunked, 413)


async def test_an_unexpected_error_is_a_bare_500_without_details(api: Api) -> None:
    class Boom:
        async def execute(self, *_: object) -> None:
            raise RuntimeError("secret internals: password=hunter2")

    container = api.app.state.container
    with container.register_user.override(providers.Object(Boom())):
        response = await api.http.post("/api/v1/auth/register", json={"email": "a@example.com", "password": "x" * 12})
    body = assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["detail"] == "an unexpected error occurred"


async def test_openapi_documents_problem_responses_and_can_be_disabled(api: Api, api_with: Callable[..., Any]) -> None:
    schema = (await api.http.get("/openapi.json")).json()
    responses = schema["paths"]["/api/v1/conversations/{conversation_id}/messages"]["post"]["responses"]
    assert {"401", "404", "422", "502", "503", "504"} <= responses.keys()
    assert "application/problem+json" in responses["404"]["content"]
    async with api_with(docs_enabled=False) as hidden:
        assert (await hidden.http.get("/openapi.json")).status_code == 404
        assert (await hidden.http.get("/docs")).status_code == 404


async def test_health(api: Api) -> None:
    assert (await api.http.get("/health/live")).json()["status"] == "ok"
    ready = await api.http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["status"] == "ok"
