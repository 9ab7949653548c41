"""PostgreSQL goes away for a while and comes back: the process stays alive, says it is not ready, answers 503 with
Retry-After at once (never 500, never a hang), and recovers without a restart.

The shared PostgreSQL server is never stopped: the app reaches it through a loopback TCP proxy that the test cuts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from tests.api.conftest import Api, assert_problem, make_settings, running_api
from tests.fakes.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[TcpProxy]:
    url = make_url(postgres_url)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
async def api(proxy: TcpProxy, postgres_url: str) -> AsyncIterator[Api]:
    proxied = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = make_settings(database_url=proxied, database_connect_timeout_seconds=1, database_pool_timeout_seconds=1)
    async with running_api(settings) as running:
        yield running


async def test_an_outage_is_503_with_retry_after_then_the_service_recovers(api: Api, proxy: TcpProxy) -> None:
    jwt = await api.user("outage@example.com")
    key = (await api.http.post("/api/v1/api-keys", json={"name": "k"}, headers=jwt)).json()["key"]
    by_key = {"Authorization": f"Bearer {key}"}
    cid = (await api.http.post("/api/v1/conversations", json={}, headers=by_key)).json()["id"]

    await proxy.cut()
    assert (await api.http.get("/health/live")).status_code == 200
    ready = await api.http.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["status"] == "fail"
    requests = [
        ("GET", "/api/v1/conversations", by_key, None, None),
        ("GET", f"/api/v1/conversations/{cid}", jwt, None, None),
        ("POST", f"/api/v1/conversations/{cid}/messages", by_key, {"content": "hi"}, None),
        ("POST", "/api/v1/auth/token", {}, None, {"username": "outage@example.com", "password": "whatever it is"}),
        ("POST", "/api/v1/auth/register", {}, {"email": "new@example.com", "password": "a long passphrase"}, None),
    ]
    for method, path, headers, body, form in requests:
        started = time.monotonic()
        response = await api.http.request(method, path, headers=headers, json=body, data=form)
        assert time.monotonic() - started < 3, f"{method} {path} did not fail fast"
        problem = assert_problem(response, 503, "service_unavailable")
        assert int(response.headers["retry-after"]) >= 1
        for leak in ("asyncpg", "sqlalchemy", "Connect call failed", "127.0.0.1", "Traceback"):
            assert leak not in response.text, problem

    await proxy.restore()
    assert (await api.http.get("/health/ready")).status_code == 200
    listed = await api.http.get("/api/v1/conversations", headers=by_key)
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["items"]] == [cid]
    posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "back"}, headers=by_key)
    assert posted.status_code == 201, posted.text


async def test_a_connection_dropped_mid_session_is_replaced(api: Api, proxy: TcpProxy) -> None:
    """A short blip (connections reset, the server back at once): pooled connections are dead, fresh ones work."""
    jwt = await api.user("blip@example.com")
    assert (await api.http.get("/api/v1/users/me", headers=jwt)).status_code == 200
    await proxy.cut()
    await proxy.restore()
    statuses = [(await api.http.get("/api/v1/users/me", headers=jwt)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
