"""Session tokens as JWTs (RFC 8725): one pinned algorithm, typed tokens, issuer and audience checked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from domain.auth.model import RefreshToken, Role, User
from domain.auth.ports import AccessClaims, IssuedToken, RefreshClaims, TokenService
from domain.shared.errors import Unauthenticated

ALGORITHM = "HS256"
LEEWAY_SECONDS = 10
INVALID_TOKEN = "credentials are missing, invalid or expired"


class JwtTokenService(TokenService):
    def __init__(
        self, *, secret: str, issuer: str, audience: str, access_ttl_seconds: int, refresh_ttl_seconds: int
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._access_ttl = timedelta(seconds=access_ttl_seconds)
        self._refresh_ttl_seconds = refresh_ttl_seconds

    @property
    def refresh_ttl_seconds(self) -> int:
        return self._refresh_ttl_seconds

    def issue_access(self, user: User, now: datetime) -> IssuedToken:
        expires = now + self._access_ttl
        claims = {
            "sub": str(user.id),
            "role": user.role.value,
            "typ": "access",
            "jti": uuid.uuid4().hex,
            **self._times(now, expires),
        }
        return IssuedToken(token=self._encode(claims), expires_at=expires)

    def issue_refresh(self, token: RefreshToken) -> IssuedToken:
        claims = {
            "sub": str(token.user_id),
            "typ": "refresh",
            "jti": str(token.id),
            **self._times(token.issued_at, token.expires_at),
        }
        return IssuedToken(token=self._encode(claims), expires_at=token.expires_at)

    def decode_access(self, token: str) -> AccessClaims:
        claims = self._decode(token, "access")
        try:
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                role=Role(claims["role"]),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise Unauthenticated(INVALID_TOKEN) from exc

    def decode_refresh(self, token: str) -> RefreshClaims:
        claims = self._decode(token, "refresh")
        try:
            return RefreshClaims(token_id=uuid.UUID(claims["jti"]), user_id=uuid.UUID(claims["sub"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise Unauthenticated(INVALID_TOKEN) from exc

    def _times(self, issued: datetime, expires: datetime) -> dict[str, Any]:
        return {
            "iss": self._issuer,
            "aud": self._audience,
            "iat": int(issued.timestamp()),
            "nbf": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
        }

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM, headers={"typ": "JWT"})

    def _decode(self, token: str, expected_type: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "typ", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(INVALID_TOKEN) from exc
        if claims.get("typ") != expected_type:
            raise Unauthenticated(INVALID_TOKEN)
        return claims
