"""Re-encrypts every stored provider credential under the current key-encryption key (after a new key was put first
in the settings, the old ones still configured to read). Page by page, one commit per page, so it can run while the
service serves and be run again: a credential already under the current key is left alone."""

from __future__ import annotations

from dataclasses import dataclass, replace

from application.unit_of_work import UnitOfWorkFactory
from domain.credentials.errors import NO_ENCRYPTION_KEY, CredentialEncryptionUnavailable
from domain.credentials.model import binding
from domain.credentials.ports import SecretCipher
from domain.shared.clock import Clock

PAGE_SIZE = 200


@dataclass(frozen=True)
class RotationReport:
    examined: int
    re_encrypted: int


class RotateProviderCredentials:
    def __init__(self, *, uow: UnitOfWorkFactory, cipher: SecretCipher, clock: Clock) -> None:
        self._uow = uow
        self._cipher = cipher
        self._clock = clock

    async def execute(self) -> RotationReport:
        if not self._cipher.available:
            raise CredentialEncryptionUnavailable(NO_ENCRYPTION_KEY)
        examined = re_encrypted = 0
        after = None
        while True:
            async with self._uow() as uow:
                page = await uow.provider_credentials.list_page(after=after, limit=PAGE_SIZE)
                for credential in page:
                    if self._cipher.is_current(credential.sealed):
                        continue
                    bound = binding(credential.user_id, credential.provider)
                    sealed = self._cipher.seal(self._cipher.open(credential.sealed, bound), bound)
                    # updated_at stays: the user's key did not change, only how it is sealed.
                    await uow.provider_credentials.update(replace(credential, sealed=sealed))
                    re_encrypted += 1
                await uow.commit()
            examined += len(page)
            if len(page) < PAGE_SIZE:
                return RotationReport(examined=examined, re_encrypted=re_encrypted)
            after = page[-1].id
