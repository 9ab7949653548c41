from __future__ import annotations

from dataclasses import dataclass

from application.unit_of_work import UnitOfWorkFactory
from domain.auth.errors import WeakPassword
from domain.auth.model import Role, User, check_password_policy, normalize_email
from domain.auth.ports import CommonPasswords, PasswordHasher
from domain.shared.clock import Clock
from domain.shared.errors import Conflict
from domain.shared.ids import new_id


@dataclass(frozen=True)
class RegisterUserCommand:
    email: str
    password: str
    role: Role = Role.MEMBER  # only the CLI's create-admin passes ADMIN; the HTTP API never does


COMMON_PASSWORD = "password is too common: it appears in lists of breached passwords"


class RegisterUser:
    def __init__(
        self, *, uow: UnitOfWorkFactory, hasher: PasswordHasher, common_passwords: CommonPasswords, clock: Clock
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._common_passwords = common_passwords
        self._clock = clock

    async def execute(self, command: RegisterUserCommand) -> User:
        email = normalize_email(command.email)
        check_password_policy(command.password, email=email)
        if self._common_passwords.contains(command.password):
            raise WeakPassword(COMMON_PASSWORD)
        password_hash = await self._hasher.hash(command.password)
        now = self._clock.now()
        user = User(
            id=new_id(),
            email=email,
            password_hash=password_hash,
            role=command.role,
            is_active=True,
            created_at=now,
            updated_at=now,
        )
        async with self._uow() as uow:
            if await uow.users.find_by_email(email) is not None:
                raise Conflict("a user with this email already exists")
            await uow.users.add(user)
            await uow.commit()
        return user
