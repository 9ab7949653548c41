from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from application.auth.authenticate import Authenticate
from application.auth.log_in import LogIn, LogInCommand
from application.auth.register_user import RegisterUser, RegisterUserCommand
from domain.auth.model import Principal, Role, Scope, User
from domain.auth.ports import LoginThrottle
from domain.llm.model import ModelSpec
from infrastructure.llm.catalog import StaticModelCatalog
from infrastructure.llm.local import LocalProvider
from infrastructure.llm.router import ModelRouter
from infrastructure.memory.login_throttle import InMemoryLoginThrottle
from infrastructure.memory.session_revocations import InMemorySessionRevocations
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from infrastructure.security.common_passwords import SetCommonPasswords
from infrastructure.security.passwords import Argon2PasswordHasher
from infrastructure.security.tokens import JwtTokenService
from tests.fakes.clock import FakeClock
from tests.fakes.upstream import FakeUpstream
from tests.unit import routing_support
from tests.unit.routing_support import RouterMaker, Sleeps

PASSWORD = "correct horse battery staple"
COMMON_PASSWORDS = SetCommonPasswords.from_file()  # the bundled list: offline, and read once for every test


@dataclass
class Env:
    """Everything a use case needs, on in-memory adapters, with a clock the test controls."""

    uow: InMemoryUnitOfWorkFactory
    clock: FakeClock
    hasher: Argon2PasswordHasher
    tokens: JwtTokenService
    catalog: StaticModelCatalog
    llm: ModelRouter
    throttle: LoginThrottle
    sessions: InMemorySessionRevocations

    async def register(self, email: str, role: Role = Role.MEMBER) -> User:
        use_case = RegisterUser(uow=self.uow, hasher=self.hasher, common_passwords=COMMON_PASSWORDS, clock=self.clock)
        return await use_case.execute(RegisterUserCommand(email=email, password=PASSWORD, role=role))

    async def principal(self, email: str, role: Role = Role.MEMBER) -> Principal:
        user = await self.register(email, role)
        return Principal(user_id=user.id, role=user.role, scopes=Scope.for_role(user.role))

    async def log_in(self, email: str, password: str = PASSWORD, address: str | None = None):  # type: ignore[no-untyped-def]
        use_case = LogIn(uow=self.uow, hasher=self.hasher, tokens=self.tokens, clock=self.clock, throttle=self.throttle)
        return await use_case.execute(LogInCommand(email=email, password=password, client_address=address))

    def authenticate(self) -> Authenticate:
        return Authenticate(uow=self.uow, tokens=self.tokens, sessions=self.sessions, clock=self.clock)


def local_spec(name: str = "local", **overrides: object) -> ModelSpec:
    values: dict[str, object] = {"name": name, "provider": "local", "upstream_model": "local-echo"}
    values.update(overrides)
    return ModelSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def env() -> Env:
    clock = FakeClock()
    specs = [local_spec("local"), local_spec("local-small", max_output_tokens=5), local_spec("scripted")]
    catalog = StaticModelCatalog(specs, default_model="local")
    return Env(
        uow=InMemoryUnitOfWorkFactory(),
        clock=clock,
        hasher=Argon2PasswordHasher(time_cost=1, memory_kib=8, parallelism=1),
        tokens=JwtTokenService(
            secret="s" * 40, issuer="test", audience="test", access_ttl_seconds=900, refresh_ttl_seconds=3600
        ),
        catalog=catalog,
        llm=ModelRouter(catalog, {s.name: LocalProvider(s) for s in specs}),
        throttle=InMemoryLoginThrottle(clock=clock, max_per_account=5, max_per_address=20, window_seconds=900),
        sessions=InMemorySessionRevocations(ttl_seconds=910),
    )


@pytest.fixture(scope="module")
async def fake_server() -> AsyncIterator[FakeUpstream]:
    """One fake upstream per test module (the routing tests' provider), reset before each test by ``upstream``."""
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
def upstream(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.reset()
    return fake_server


@pytest.fixture
def clock() -> routing_support.FakeClock:
    """The routing tests' monotonic clock (seconds), moved by hand."""
    return routing_support.FakeClock()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def make_router(
    upstream: FakeUpstream, clock: routing_support.FakeClock, sleeps: Sleeps
) -> AsyncIterator[RouterMaker]:
    """Routers over the fake upstream (OpenAI ``gpt-main`` falling back to Anthropic ``claude-main``), closed after."""
    maker = RouterMaker(upstream, clock, sleeps)
    yield maker
    await maker.aclose()
