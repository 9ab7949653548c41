"""A Hypothesis state machine over users, API keys, conversations and messages, driving the real app over ASGI,
its models served by the fake upstream (``tests/fakes/upstream.py``) over loopback.

Any interleaving of sign-ups, key creation and revocation, conversations created, read, answered and deleted,
chat completions and embeddings through the compatible API, by the owner or by someone else, with an access token or
an API key, some calls meeting an upstream failure (a 500 the retry gets past, a stream broken mid-answer), must keep
these invariants after every step:

* no response is a 5xx;
* nobody sees anyone else's conversations or keys (a foreign id is a 404, lists hold only one's own);
* what the API lists is exactly what the model of the system says exists;
* usage accounting: each user's usage (``GET /api/v1/usage``) has one record per model call they made, whatever its
  outcome, and their successful (billed) records equal the answers the upstream served for them, counted by the
  fake upstream during their calls.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from schemathesis.python import asgi

from interfaces.http.app import create_app
from tests.api.conftest import PASSWORD, make_settings
from tests.fakes import upstream as fake
from tests.fakes.upstream import FakeUpstream, UpstreamThread

pytestmark = pytest.mark.api

KEY_ENV = "SB_FUZZ_UPSTREAM_KEY"
CATALOG = f"""
default_model = "chat"

[models.chat]
provider = "openai"
upstream_model = "gpt-4o-mini"
base_url = "{{base}}/v1"
api_key_env = "{KEY_ENV}"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60

[models.embed]
kind = "embedding"
provider = "openai"
upstream_model = "text-embedding-3-small"
base_url = "{{base}}/v1"
api_key_env = "{KEY_ENV}"
input_usd_per_mtok = 0.02
"""
FAILURES = st.sampled_from([None, "retried", "mid-stream"])
SETTLE_SECONDS = 5.0  # usage records are written just after the response, by a background writer


@dataclass
class User:
    email: str
    jwt: dict[str, str]
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # key id -> its Authorization header

    def credentials(self) -> list[dict[str, str]]:
        return [self.jwt, *self.keys.values()]


@dataclass(frozen=True)
class Conversation:
    id: str
    owner: str


class TenantIsolation(RuleBasedStateMachine):
    users = Bundle("users")
    conversations = Bundle("conversations")

    def __init__(self, upstream: UpstreamThread, catalog: Path) -> None:
        super().__init__()
        upstream.reset()
        self.upstream = upstream
        retries = {  # quick, and never out of budget: a retry always gets past the one failure pushed
            "upstream_backoff_base_seconds": 0.001,
            "upstream_backoff_max_seconds": 0.01,
            "upstream_retry_budget_min_retries": 1000,
        }
        # Every usage record is written as soon as it is made (a batch of one), so each step's records settle quickly.
        self.app = create_app(make_settings(catalog_path=catalog, usage_batch_size=1, **retries))
        self.client = asgi.get_client(self.app).__enter__()
        self.accounts: dict[str, User] = {}
        self.owned: dict[str, set[str]] = {}  # email -> ids of live conversations
        self.messages: dict[str, int] = {}  # conversation id -> messages stored
        self.calls: Counter[str] = Counter()  # email -> model calls made (each must have one usage record)
        self.billed: Counter[str] = Counter()  # email -> answers the upstream served during their calls

    def teardown(self) -> None:
        self.client.__exit__(None, None, None)
        asgi.shutdown_lifespans()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code < 500, (method, path, response.status_code, response.text)
        return response

    def served(self) -> int:
        return self.upstream.completions_served + self.upstream.embeddings_served

    def upstream_fails(self, failure: str | None) -> None:
        """The next model call meets a failure: a 500 (retried), or a stream that breaks after two events (an error
        event and a partial answer; a whole answer is retried). One at a time, so a retry always gets past it."""
        if failure is not None and not self.upstream.pending:
            self.upstream.push(fake.stream_error_after(2) if failure == "mid-stream" else fake.server_error())

    def model_call(self, actor: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request that may call a model: the upstream answers served meanwhile are ``actor``'s."""
        before = self.served()
        response = self.call(method, path, **kwargs)
        deadline = time.monotonic() + SETTLE_SECONDS
        while self.upstream.in_flight and time.monotonic() < deadline:  # the fake counts an answer once it is sent
            time.sleep(0.001)
        self.billed[actor] += self.served() - before
        return response

    @rule(target=users, name=st.text(alphabet="abcdefghij", min_size=1, max_size=6))
    def sign_up(self, name: str) -> Any:
        email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
        assert (
            self.call("POST", "/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        )
        token = self.call("POST", "/api/v1/auth/token", data={"username": email, "password": PASSWORD}).json()
        self.accounts[email] = User(email, {"Authorization": f"Bearer {token['access_token']}"})
        self.owned[email] = set()
        return email

    @rule(owner=users, scopes=st.sets(st.sampled_from(["chat", "models", "keys"]), min_size=1))
    def create_key(self, owner: str, scopes: set[str]) -> None:
        user = self.accounts[owner]
        body = {"name": "k", "scopes": sorted(scopes)}
        created = self.call("POST", "/api/v1/api-keys", json=body, headers=user.jwt)
        assert created.status_code == 201
        if "chat" in scopes and "keys" in scopes:  # keep only keys that can do everything the rules try
            user.keys[created.json()["id"]] = {"Authorization": f"Bearer {created.json()['key']}"}

    @rule(actor=users, owner=users)
    def revoke_a_key(self, actor: str, owner: str) -> None:
        keys = self.accounts[owner].keys
        if not keys:
            return
        key_id = next(iter(keys))
        revoked = self.call("DELETE", f"/api/v1/api-keys/{key_id}", headers=self.accounts[actor].jwt)
        if actor == owner:
            assert revoked.status_code == 204
            del keys[key_id]
        else:
            assert revoked.status_code == 404

    @rule(target=conversations, owner=users, by_key=st.booleans())
    def start_conversation(self, owner: str, by_key: bool) -> Any:
        user = self.accounts[owner]
        headers = next(iter(user.keys.values())) if by_key and user.keys else user.jwt
        created = self.call("POST", "/api/v1/conversations", json={"title": "t"}, headers=headers)
        assert created.status_code == 201
        cid = created.json()["id"]
        self.owned[owner].add(cid)
        self.messages[cid] = 0
        return Conversation(cid, owner)

    @rule(actor=users, conversation=conversations, stream=st.booleans(), failure=FAILURES)
    def post_message(self, actor: str, conversation: Conversation, stream: bool, failure: str | None) -> None:
        user = self.accounts[actor]
        path = f"/api/v1/conversations/{conversation.id}/messages"
        self.upstream_fails(failure)
        posted = self.model_call(actor, "POST", path, json={"content": "hello", "stream": stream}, headers=user.jwt)
        if actor != conversation.owner or conversation.id not in self.owned[conversation.owner]:
            assert posted.status_code == 404
            return
        assert posted.status_code == (200 if stream else 201), posted.text
        self.messages[conversation.id] += 2  # a stream broken mid-answer stores its partial answer too
        self.calls[actor] += 1

    @rule(actor=users, stream=st.booleans(), by_key=st.booleans(), failure=FAILURES)
    def complete(self, actor: str, stream: bool, by_key: bool, failure: str | None) -> None:
        user = self.accounts[actor]
        headers = next(iter(user.keys.values())) if by_key and user.keys else user.jwt
        body = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}], "stream": stream}
        self.upstream_fails(failure)
        completed = self.model_call(actor, "POST", "/v1/chat/completions", json=body, headers=headers)
        assert completed.status_code == 200, completed.text
        self.calls[actor] += 1

    @precondition(lambda self: not self.upstream.pending)
    @rule(actor=users)
    def embed(self, actor: str) -> None:
        body = {"model": "embed", "input": ["one", "two"]}
        embedded = self.model_call(actor, "POST", "/v1/embeddings", json=body, headers=self.accounts[actor].jwt)
        assert embedded.status_code == 200, embedded.text
        assert len(embedded.json()["data"]) == 2
        self.calls[actor] += 1

    @rule(actor=users, conversation=conversations)
    def read_conversation(self, actor: str, conversation: Conversation) -> None:
        for headers in self.accounts[actor].credentials():
            found = self.call("GET", f"/api/v1/conversations/{conversation.id}", headers=headers)
            if actor == conversation.owner and conversation.id in self.owned[actor]:
                assert found.status_code == 200
                assert len(found.json()["messages"]) == self.messages[conversation.id]
            else:
                assert found.status_code == 404
                assert conversation.owner not in found.text

    @rule(target=conversations, actor=users, conversation=consumes(conversations))
    def delete_conversation(self, actor: str, conversation: Conversation) -> Any:
        deleted = self.call("DELETE", f"/api/v1/conversations/{conversation.id}", headers=self.accounts[actor].jwt)
        live = conversation.id in self.owned[conversation.owner]
        if actor == conversation.owner and live:
            assert deleted.status_code == 204
            self.owned[actor].discard(conversation.id)
            return multiple()
        assert deleted.status_code == 404
        return multiple(conversation)  # still someone's (or already gone): keep it as a target for others

    @invariant()
    def everyone_sees_exactly_their_own(self) -> None:
        for email, user in self.accounts.items():
            for headers in user.credentials():
                listed = self.call("GET", "/api/v1/conversations", params={"limit": 100}, headers=headers).json()
                assert {c["id"] for c in listed["items"]} == self.owned[email]
            keys = self.call("GET", "/api/v1/api-keys", headers=user.jwt).json()["items"]
            live = {k["id"] for k in keys if k["revoked_at"] is None}
            assert set(user.keys) <= live

    @invariant()
    def usage_records_equal_model_calls_and_billed_records_equal_upstream_answers(self) -> None:
        for email, user in self.accounts.items():
            expected = (self.calls[email], self.billed[email])
            deadline = time.monotonic() + SETTLE_SECONDS
            while (seen := self.usage(user)) != expected and time.monotonic() < deadline:
                time.sleep(0.005)
            assert seen == expected, f"{email}: (records, billed) {seen} for (model calls, upstream answers) {expected}"
        assert self.billed.total() == self.served()  # every upstream answer was someone's

    def usage(self, user: User) -> tuple[int, int]:
        """The user's usage records: all of them, and the successful ones not served from the cache (billed)."""
        totals = self.call("GET", "/api/v1/usage", headers=user.jwt).json()["totals"]
        return totals["requests"], totals["requests"] - totals["failed_requests"] - totals["cached_requests"]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpstreamThread, Path]]:
    with pytest.MonkeyPatch.context() as env, FakeUpstream.run_in_thread(record=False) as running:
        env.setenv(KEY_ENV, "sk-fuzz")
        catalog = tmp_path_factory.mktemp("fuzz") / "models.toml"
        catalog.write_text(CATALOG.format(base=running.base_url))
        yield running, catalog


def test_tenant_isolation_and_usage_accounting_hold_after_every_step(upstream: tuple[UpstreamThread, Path]) -> None:
    running, catalog = upstream
    run_state_machine_as_test(
        lambda: TenantIsolation(running, catalog),
        settings=settings(
            max_examples=10,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )
