"""JWT handling per RFC 8725: pinned algorithm, validated claims with a small leeway, typed tokens, key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from domain.auth.model import RefreshToken, Role, User
from domain.shared.errors import Unauthenticated
from infrastructure.security.tokens import LEEWAY_SECONDS, JwtTokenService, VerificationKey, key_id
from tests.fakes.clock import FakeClock

pytestmark = pytest.mark.unit

SECRET = "current-secret-" + "c" * 64  # long enough for HS512 too (the test forges such tokens)
OLD_SECRET = "previous-secret-" + "p" * 32
ISSUER, AUDIENCE = "switchboard", "switchboard-api"


def service(clock: FakeClock | None = None, **overrides: Any) -> JwtTokenService:
    values: dict[str, Any] = {
        "secret": SECRET,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "access_ttl_seconds": 900,
        "refresh_ttl_seconds": 3600,
        "clock": clock or FakeClock(),
    }
    values.update(overrides)
    return JwtTokenService(**values)


def a_user() -> User:
    now = datetime.now(UTC)
    return User(
        id=uuid.uuid4(),
        email="ada@example.com",
        password_hash="x",
        role=Role.MEMBER,
        is_active=True,
        created_at=now,
        updated_at=now,
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "role": "member",
        "typ": "access",
        "jti": uuid.uuid4().hex,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def forge(
    payload: dict[str, Any], *, secret: str = SECRET, alg: str = "HS256", headers: dict[str, Any] | None = None
) -> str:
    header = {"typ": "at+jwt", "kid": key_id(secret)} if headers is None else headers
    return jwt.encode(payload, secret, algorithm=alg, headers=header)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_issued_tokens_name_their_key_and_type() -> None:
    tokens = service()
    access = tokens.issue_access(a_user(), datetime.now(UTC)).token
    header = jwt.get_unverified_header(access)
    assert header == {"alg": "HS256", "typ": "at+jwt", "kid": tokens.key_id}
    assert tokens.decode_access(access).role is Role.MEMBER


def test_a_well_formed_forged_token_is_accepted_only_with_the_right_secret() -> None:
    tokens = service()
    assert tokens.decode_access(forge(claims()))
    with pytest.raises(Unauthenticated):
        tokens.decode_access(forge(claims(), secret="another-secret-" + "z" * 32, headers={"kid": key_id(SECRET)}))


def test_alg_none_is_refused() -> None:
    unsigned = f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': key_id(SECRET)})}.{b64(claims())}."
    with pytest.raises(Unauthenticated):
        service().decode_access(unsigned)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused_even_with_the_right_secret(alg: str) -> None:
    with pytest.raises(Unauthenticated):
        service().decode_access(forge(claims(), alg=alg))


def hand_signed(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    """HS256 by hand: PyJWT itself refuses to use a PEM public key as an HMAC secret."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")


PUBLIC_PEM = b"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA"])
def test_algorithm_confusion_is_refused(alg: str) -> None:
    """A token claiming an asymmetric algorithm, 'signed' with what would be its public key, gets nowhere."""
    header = {"alg": alg, "typ": "at+jwt", "kid": key_id(SECRET)}
    with pytest.raises(Unauthenticated):
        service().decode_access(hand_signed(header, claims(), PUBLIC_PEM))


def test_an_hmac_token_keyed_with_a_public_key_is_refused() -> None:
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key_id(SECRET)}
    with pytest.raises(Unauthenticated):
        service().decode_access(hand_signed(header, claims(), PUBLIC_PEM))
    assert service().decode_access(hand_signed(header, claims(), SECRET.encode()))  # the same, keyed right, passes


@pytest.mark.parametrize("missing", ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "typ"])
def test_every_registered_claim_is_required(missing: str) -> None:
    with pytest.raises(Unauthenticated):
        service().decode_access(forge(claims(**{missing: None})))


@pytest.mark.parametrize(
    "overrides",
    [
        lambda now: {"iss": "someone-else"},
        lambda now: {"aud": "another-api"},
        lambda now: {"aud": [AUDIENCE, "another-api"]},  # strict: exactly our audience
        lambda now: {"exp": now - LEEWAY_SECONDS - 5},
        lambda now: {"nbf": now + LEEWAY_SECONDS + 60},
        lambda now: {"iat": now + LEEWAY_SECONDS + 60},
        lambda now: {"role": "root"},
        lambda now: {"sub": "not-a-uuid"},
    ],
)
def test_bad_claims_are_refused(overrides: Any) -> None:
    """Times are taken when the test runs, not when it is collected (a long run would make them stale)."""
    with pytest.raises(Unauthenticated):
        service().decode_access(forge(claims(**overrides(int(time.time())))))


def test_a_few_seconds_of_clock_skew_are_tolerated() -> None:
    skew = LEEWAY_SECONDS - 5
    now = int(time.time())
    assert service().decode_access(forge(claims(exp=now - skew, iat=now + skew, nbf=now + skew)))


def test_a_refresh_token_is_not_an_access_token_and_vice_versa() -> None:
    tokens = service()
    now = datetime.now(UTC)
    refresh = RefreshToken(
        id=uuid.uuid4(), family_id=uuid.uuid4(), user_id=uuid.uuid4(), issued_at=now, expires_at=now + timedelta(1)
    )
    refresh_token = tokens.issue_refresh(refresh).token
    access_token = tokens.issue_access(a_user(), now).token
    with pytest.raises(Unauthenticated):
        tokens.decode_access(refresh_token)
    with pytest.raises(Unauthenticated):
        tokens.decode_refresh(access_token)
    # Relabelling the header alone does not help: the claims say what the token is, and both are checked.
    relabelled = forge(claims(typ="refresh"), headers={"typ": "at+jwt", "kid": key_id(SECRET)})
    with pytest.raises(Unauthenticated):
        tokens.decode_access(relabelled)
    mismatched = forge(claims(), headers={"typ": "rt+jwt", "kid": key_id(SECRET)})
    with pytest.raises(Unauthenticated):
        tokens.decode_access(mismatched)


def test_a_token_from_before_key_ids_is_checked_against_the_current_key() -> None:
    assert service().decode_access(forge(claims(), headers={"typ": "JWT"}))
    with pytest.raises(Unauthenticated):
        service().decode_access(forge(claims(), secret=OLD_SECRET, headers={"typ": "JWT"}))


def test_an_unknown_key_id_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        service().decode_access(forge(claims(), headers={"typ": "at+jwt", "kid": "no-such-key"}))
    not_a_string = {"alg": "HS256", "typ": "at+jwt", "kid": ["a", "list"]}
    with pytest.raises(Unauthenticated):
        service().decode_access(hand_signed(not_a_string, claims(), SECRET.encode()))


def test_rotation_keeps_old_tokens_during_the_overlap_then_refuses_them() -> None:
    clock = FakeClock()
    before = service(clock, secret=OLD_SECRET)
    old_token = before.issue_access(a_user(), clock.now()).token

    overlap_ends = clock.now() + timedelta(minutes=30)
    after = service(clock, previous_keys=[VerificationKey(OLD_SECRET, not_after=overlap_ends)])
    assert after.key_id != before.key_id
    assert after.decode_access(old_token).role is Role.MEMBER  # still accepted during the overlap
    new_token = after.issue_access(a_user(), clock.now()).token
    assert jwt.get_unverified_header(new_token)["kid"] == key_id(SECRET)  # only the new key signs
    with pytest.raises(Unauthenticated):
        before.decode_access(new_token)

    clock.advance(minutes=30)
    with pytest.raises(Unauthenticated):  # the overlap is over: refused although the token has not expired
        after.decode_access(old_token)
    assert after.decode_access(new_token)

    removed = service(clock)
    with pytest.raises(Unauthenticated):
        removed.decode_access(old_token)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "....", "x" * 5000, "eyJhbGciOiJIUzI1NiJ9..sig"])
def test_garbage_is_refused_cleanly(garbage: str) -> None:
    with pytest.raises(Unauthenticated):
        service().decode_access(garbage)
