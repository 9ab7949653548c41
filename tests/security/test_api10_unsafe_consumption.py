"""API10:2023 Unsafe consumption of APIs: what an upstream provider sends is untrusted input.

A provider that answers with garbage, an HTML page, a huge body, a redirect or a cut stream gets a 502/503/504
problem to the client, never a 500, never the provider's credentials, never a body stored past the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.api.conftest import assert_problem
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream
from tests.security.conftest import OPENAI_KEY, conversation

pytestmark = pytest.mark.api
COMPLETIONS = "/v1/chat/completions"


def _final_event(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    frame = response.text.strip().split("\n\n")[-1]
    fields = dict(line.split(": ", 1) for line in frame.splitlines())
    return fields["event"], orjson.loads(fields["data"])


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [
        (lambda up: fake.huge_body(2_000_000), 502),
        (lambda up: fake.redirect(f"{up.base_url}/v1/chat/completions"), 502),
        (lambda up: fake.redirect("http://169.254.169.254/latest/meta-data/"), 502),
        (lambda up: fake.html_error(500), 502),
        (lambda up: fake.malformed(), 502),
        (lambda up: fake.missing_fields(), 502),
        (lambda up: fake.disconnect(), 503),
    ],
)
async def test_a_misbehaving_upstream_is_a_problem_never_a_500(
    api_on_upstream: Callable[..., Any], upstream: FakeUpstream, behaviour: Any, status: int
) -> None:
    async with api_on_upstream(upstream_max_attempts=1, upstream_max_response_bytes=65_536) as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers, model="solo")
        upstream.push(behaviour(upstream))
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        problem = assert_problem(posted, status)
        assert problem["code"].startswith("upstream_")
        assert OPENAI_KEY not in posted.text
        assert "<html" not in posted.text.lower()
        assert len(upstream.requests_to(COMPLETIONS)) == 1  # a redirect is never followed, not even to itself
        detail = (await api.http.get(f"/api/v1/conversations/{cid}", headers=headers)).json()
        assert detail["messages"] == []  # nothing half-baked was stored


async def test_a_huge_stream_is_cut_at_the_limit_and_what_arrived_is_stored_as_incomplete(
    api_on_upstream: Callable[..., Any], upstream: FakeUpstream
) -> None:
    async with api_on_upstream(upstream_max_attempts=1, upstream_max_response_bytes=4096) as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers, model="solo")
        long_question = " ".join(f"word{n}" for n in range(400))
        upstream.push(fake.delay(0, chunk_delay=0.002))  # events arrive one by one, as from a real model
        response = await api.http.post(
            f"/api/v1/conversations/{cid}/messages",
            json={"content": long_question, "stream": True},
            headers=headers,
        )
        name, error = _final_event(response)
        assert name == "error"
        assert error["code"] == "upstream_bad_response"
        partial = error["result"]["assistant_message"]
        assert partial["status"] == "incomplete"
        assert 0 < len(partial["content"]) < 4096


async def test_a_stream_cut_mid_way_keeps_the_partial_answer(
    api_on_upstream: Callable[..., Any], upstream: FakeUpstream
) -> None:
    async with api_on_upstream(upstream_max_attempts=1) as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers, model="solo")
        upstream.push(fake.drop_stream_after(2))
        response = await api.http.post(
            f"/api/v1/conversations/{cid}/messages",
            json={"content": "one two three four", "stream": True},
            headers=headers,
        )
        name, error = _final_event(response)
        assert (name, error["status"]) == ("error", 502)
        stored = (await api.http.get(f"/api/v1/conversations/{cid}", headers=headers)).json()["messages"]
        assert [m["status"] for m in stored] == ["complete", "incomplete"]
        assert stored[1]["content"] == error["result"]["assistant_message"]["content"] != ""


async def test_an_upstream_echoing_the_gateways_key_never_reaches_the_client(
    api_on_upstream: Callable[..., Any], upstream: FakeUpstream
) -> None:
    async with api_on_upstream(upstream_max_attempts=1) as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers, model="solo")
        upstream.push(fake.error(400, message=f"invalid request made with key {OPENAI_KEY}"))
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        assert_problem(posted, 422, "upstream_rejected")
        assert OPENAI_KEY not in posted.text


async def test_upstream_text_is_stored_and_returned_as_data_not_markup(
    api_on_upstream: Callable[..., Any], upstream: FakeUpstream
) -> None:
    """Whatever the model says is JSON string data: served as application/json with nosniff and a deny-all CSP."""
    async with api_on_upstream() as api:
        headers = await api.user("ada@example.com")
        cid = await conversation(api, headers, model="solo")
        upstream.push(fake.ok(text="<script>alert(document.cookie)</script>"))
        posted = await api.http.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers)
        assert posted.headers["content-type"] == "application/json"
        assert posted.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in posted.headers["content-security-policy"]
        assert posted.json()["assistant_message"]["content"] == "<script>alert(document.cookie)</script>"
