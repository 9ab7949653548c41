"""Statement parameters (prompts, emails, key hashes) never reach a log, not even in a database error's traceback."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.db.tables import users
from infrastructure.observability.logging import captured_logs, configure_logging, get_logger

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    return request.getfixturevalue(f"{request.param}_engine")  # type: ignore[no-any-return]


def _user(email: str, password_hash: str) -> dict[str, object]:
    now = datetime.now(UTC)
    values = {"email": email, "password_hash": password_hash, "role": "member", "is_active": True}
    return {"id": uuid.uuid4(), "created_at": now, "updated_at": now, **values}


async def test_an_integrity_errors_log_has_no_parameters(engine: AsyncEngine) -> None:
    secret_hash = f"argon2-digest-{uuid.uuid4().hex}"
    email = f"private-{uuid.uuid4().hex[:8]}@example.com"
    configure_logging(json=True)
    async with engine.begin() as connection:
        await connection.execute(users.insert().values(_user(email, secret_hash)))
    try:
        with captured_logs() as logs:
            try:
                async with engine.begin() as connection:
                    await connection.execute(users.insert().values(_user(email, secret_hash)))
            except IntegrityError:  # as the request middleware logs an unexpected error
                get_logger("switchboard.http").exception("unhandled error")
    finally:
        async with engine.begin() as connection:
            await connection.execute(users.delete().where(users.c.email == email))
    logged = logs.getvalue()
    assert "unhandled error" in logged
    assert "IntegrityError" in logged
    assert secret_hash not in logged
    assert email not in logged
    assert "parameters hidden" in logged
