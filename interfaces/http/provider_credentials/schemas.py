from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from domain.credentials.model import MAX_SECRET_LENGTH, MIN_SECRET_LENGTH, ProviderCredential


class PutProviderCredentialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(
        min_length=MIN_SECRET_LENGTH,
        max_length=MAX_SECRET_LENGTH,
        description="Your key for this provider. Checked with the provider, stored encrypted, never shown again.",
    )


class ProviderCredentialResponse(BaseModel):
    provider: str
    hint: str = Field(description="The key's last four characters, to recognise it; the key itself is never shown.")
    created_at: datetime
    updated_at: datetime = Field(description="When the key was last stored (replaced).")

    @classmethod
    def of(cls, credential: ProviderCredential) -> ProviderCredentialResponse:
        return cls(
            provider=credential.provider,
            hint=credential.hint,
            created_at=credential.created_at,
            updated_at=credential.updated_at,
        )


class ProviderCredentialListResponse(BaseModel):
    items: list[ProviderCredentialResponse]
