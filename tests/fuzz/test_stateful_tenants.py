"""A Hypothesis state machine over users, API keys, conversations and messages, driving the real app over ASGI.

Any interleaving of sign-ups, key creation and revocation, conversations created, read, answered and deleted, by
the owner or by someone else, with an access token or an API key, must keep these invariants after every step:

* no response is a 5xx;
* nobody sees anyone else's conversations or keys (a foreign id is a 404, lists hold only one's own);
* what the API lists is exactly what the model of the system says exists.

The model also counts successful model calls (``answered``), so that the usage-accounting invariant (usage rows equal
successful upstream calls) is one more ``@invariant`` once usage records exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, rule
from schemathesis.python import asgi

from interfaces.http.app import create_app
from tests.api.conftest import PASSWORD, make_settings

pytestmark = pytest.mark.api


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

    def __init__(self) -> None:
        super().__init__()
        self.app = create_app(make_settings())
        self.client = asgi.get_client(self.app).__enter__()
        self.accounts: dict[str, User] = {}
        self.owned: dict[str, set[str]] = {}  # email -> ids of live conversations
        self.messages: dict[str, int] = {}  # conversation id -> messages stored
        self.answered = 0  # successful model calls, for the usage invariant to come

    def teardown(self) -> None:
        self.client.__exit__(None, None, None)
        asgi.shutdown_lifespans()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code < 500, (method, path, response.status_code, response.text)
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

    @rule(actor=users, conversation=conversations, stream=st.booleans())
    def post_message(self, actor: str, conversation: Conversation, stream: bool) -> None:
        user = self.accounts[actor]
        path = f"/api/v1/conversations/{conversation.id}/messages"
        posted = self.call("POST", path, json={"content": "hello", "stream": stream}, headers=user.jwt)
        if actor != conversation.owner or conversation.id not in self.owned[conversation.owner]:
            assert posted.status_code == 404
            return
        assert posted.status_code == (200 if stream else 201), posted.text
        self.messages[conversation.id] += 2
        self.answered += 1

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


TenantIsolation.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
test_tenant_isolation_holds_after_every_step = TenantIsolation.TestCase
