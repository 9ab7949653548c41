"""Session tokens as JWTs, per RFC 8725 (JWT best current practices).

* One pinned algorithm (HS256): the header's ``alg`` never chooses how a token is checked, so ``none`` and
  algorithm confusion (an RS256 public key replayed as an HMAC secret) are refused.
* Every token names its signing key (``kid``); the current key signs, previous keys only verify, each until its
  ``not_after``: rotation keeps sessions alive through an overlap, then the old key is refused.
* ``exp``, ``nbf``, ``iat``, ``iss`` and ``aud`` are required and checked with a small leeway, ``iat`` must not be in
  the future, and the token type is checked both in the header (``typ``) and in the claims: a refresh token is
  never an access token.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from domain.auth.model import RefreshToken, Role, User
from domain.auth.ports import AccessClaims, IssuedToken, RefreshClaims, TokenService
from domain.shared.clock import Clock, SystemClock
from domain.shared.errors import Unauthenticated

ALGORITHM = "HS256"
LEEWAY_SECONDS = 10
MIN_SECRET_BYTES = 32
INVALID_TOKEN = "credentials are missing, invalid or expired"
ACCESS, REFRESH = "access", "refresh"
# RFC 9068 names access tokens ``at+jwt``; the refresh type is ours. Tokens issued before explicit typing say ``JWT``.
HEADER_TYPE = {ACCESS: "at+jwt", REFRESH: "rt+jwt"}
LEGACY_HEADER_TYPE = "JWT"
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "typ", "jti"]


def key_id(secret: str) -> str:
    """A key's public name: a short digest of the secret (it reveals nothing useful about a 256-bit secret)."""
    return hashlib.sha256(b"switchboard-jwt-kid\x00" + secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class VerificationKey:
    """A retired signing key still accepted for verification until ``not_after`` (``None``: until removed)."""

    secret: str
    not_after: datetime | None = None


class JwtTokenService(TokenService):
    def __init__(
        self,
        *,
        secret: str,
        issuer: str,
        audience: str,
        access_ttl_seconds: int,
        refresh_ttl_seconds: int,
        previous_keys: Sequence[VerificationKey] = (),
        clock: Clock | None = None,
    ) -> None:
        self._secret = secret
        self._kid = key_id(secret)
        self._verification_keys = {key_id(k.secret): k for k in previous_keys}
        self._verification_keys[self._kid] = VerificationKey(secret)
        self._issuer = issuer
        self._audience = audience
        self._access_ttl = timedelta(seconds=access_ttl_seconds)
        self._refresh_ttl_seconds = refresh_ttl_seconds
        self._clock = clock or SystemClock()

    @property
    def refresh_ttl_seconds(self) -> int:
        return self._refresh_ttl_seconds

    @property
    def key_id(self) -> str:
        """The ``kid`` of the key that signs new tokens."""
        return self._kid

    def issue_access(self, user: User, now: datetime, *, session_id: uuid.UUID | None = None) -> IssuedToken:
        expires = now + self._access_ttl
        claims = {
            "sub": str(user.id),
            "role": user.role.value,
            "typ": ACCESS,
            "jti": uuid.uuid4().hex,
            **({"sid": str(session_id)} if session_id is not None else {}),  # what a log-out revokes
            **self._times(now, expires),
        }
        return IssuedToken(token=self._encode(claims, ACCESS), expires_at=expires)

    def issue_refresh(self, token: RefreshToken) -> IssuedToken:
        claims = {
            "sub": str(token.user_id),
            "typ": REFRESH,
            "jti": str(token.id),
            **self._times(token.issued_at, token.expires_at),
        }
        return IssuedToken(token=self._encode(claims, REFRESH), expires_at=token.expires_at)

    def decode_access(self, token: str) -> AccessClaims:
        claims = self._decode(token, ACCESS)
        try:
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                role=Role(claims["role"]),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                session_id=uuid.UUID(claims["sid"]) if "sid" in claims else None,
            )
        except (KeyError, ValueError, TypeError, OverflowError, AttributeError) as exc:
            raise Unauthenticated(INVALID_TOKEN) from exc

    def decode_refresh(self, token: str) -> RefreshClaims:
        claims = self._decode(token, REFRESH)
        try:
            return RefreshClaims(token_id=uuid.UUID(claims["jti"]), user_id=uuid.UUID(claims["sub"]))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise Unauthenticated(INVALID_TOKEN) from exc

    def _times(self, issued: datetime, expires: datetime) -> dict[str, Any]:
        return {
            "iss": self._issuer,
            "aud": self._audience,
            "iat": int(issued.timestamp()),
            "nbf": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
        }

    def _encode(self, claims: dict[str, Any], token_type: str) -> str:
        headers = {"typ": HEADER_TYPE[token_type], "kid": self._kid}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM, headers=headers)

    def _verification_secret(self, token: str, expected_type: str) -> str:
        """The secret that must have signed ``token``, chosen by its ``kid`` (never by its ``alg``)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(INVALID_TOKEN) from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated(INVALID_TOKEN)
        if header.get("typ") not in (HEADER_TYPE[expected_type], LEGACY_HEADER_TYPE):
            raise Unauthenticated(INVALID_TOKEN)
        kid = header.get("kid", self._kid)  # tokens issued before key ids existed were signed by the current key
        key = self._verification_keys.get(kid) if isinstance(kid, str) else None
        if key is None or (key.not_after is not None and self._clock.now() >= key.not_after):
            raise Unauthenticated(INVALID_TOKEN)
        return key.secret

    def _decode(self, token: str, expected_type: str) -> dict[str, Any]:
        secret = self._verification_secret(token, expected_type)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(INVALID_TOKEN) from exc
        if claims.get("typ") != expected_type:
            raise Unauthenticated(INVALID_TOKEN)
        return claims
