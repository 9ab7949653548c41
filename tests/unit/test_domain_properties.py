"""Properties of validators and value objects, checked over generated inputs."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.pagination import decode_cursor, encode_cursor
from domain.auth.api_keys import KEY_PREFIX, generate_api_key, hash_api_key, hashes_match
from domain.auth.errors import WeakPassword
from domain.auth.model import MIN_PASSWORD_LENGTH, check_password_policy, normalize_email
from domain.chat.model import PageCursor
from domain.shared.errors import RuleViolation
from domain.shared.ids import new_id
from infrastructure.llm.catalog import CatalogError, usd_per_mtok_to_micros

pytestmark = pytest.mark.unit

local_part = st.from_regex(r"[a-zA-Z0-9._%+-]{1,30}", fullmatch=True)
domain_part = st.from_regex(r"[a-zA-Z0-9-]{1,20}\.[a-zA-Z]{2,10}", fullmatch=True)


@given(local_part, domain_part, st.sampled_from(["", " ", "\t"]))
def test_normalized_emails_are_lowercase_trimmed_and_stable(local: str, domain: str, pad: str) -> None:
    email = normalize_email(f"{pad}{local}@{domain}{pad}")
    assert email == email.strip().lower()
    assert normalize_email(email) == email


@given(st.text(max_size=40).filter(lambda s: "@" not in s))
def test_strings_without_at_are_never_emails(raw: str) -> None:
    with pytest.raises(RuleViolation):
        normalize_email(raw)


@given(st.text(max_size=MIN_PASSWORD_LENGTH - 1))
def test_short_passwords_are_refused(password: str) -> None:
    with pytest.raises(RuleViolation):
        check_password_policy(password)


def _varied(password: str) -> bool:
    """More than half its characters distinct (no repeated unit) and more than two distinct steps (no run)."""
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(password)}
    return len(set(password)) > len(password) // 2 and len(steps) > 2


@given(
    st.text(alphabet=st.characters(categories=["L", "N"]), min_size=MIN_PASSWORD_LENGTH, max_size=200).filter(_varied)
)
def test_long_enough_varied_passwords_are_accepted(password: str) -> None:
    check_password_policy(password, email="someone.else@example.com")


@given(st.text(min_size=1, max_size=6).filter(str.strip), st.integers(min_value=2, max_value=40))
def test_repetitions_of_any_unit_are_refused(unit: str, times: int) -> None:
    password = unit * max(times, -(-MIN_PASSWORD_LENGTH // len(unit)))
    with pytest.raises(WeakPassword):
        check_password_policy(password)


@given(st.sampled_from(["0123456789", "abcdefghijklmnopqrstuvwxyz"]), st.integers(0, 25), st.booleans())
def test_runs_are_refused_whichever_way_they_go(alphabet: str, start: int, descending: bool) -> None:
    cycle = alphabet * 3 if alphabet.isdigit() else alphabet
    run = cycle[start % len(alphabet) :][:MIN_PASSWORD_LENGTH]
    if len(run) < MIN_PASSWORD_LENGTH:  # the letters do not wrap: start early enough for twelve of them
        run = cycle[:MIN_PASSWORD_LENGTH]
    with pytest.raises(WeakPassword):
        check_password_policy(run[::-1] if descending else run)


@given(st.datetimes(timezones=st.just(UTC)), st.uuids())
def test_cursors_round_trip(at: datetime, ident: uuid.UUID) -> None:
    cursor = PageCursor(created_at=at, id=ident)
    assert decode_cursor(encode_cursor(cursor)) == cursor


@given(st.text(max_size=60))
def test_any_cursor_text_decodes_or_is_a_rule_violation(token: str) -> None:
    """Garbage never escapes as anything but the domain's validation error (which the API turns into a 422)."""
    with contextlib.suppress(RuleViolation):
        decode_cursor(token)


def test_api_keys_are_unique_and_only_match_their_hash() -> None:
    keys = [generate_api_key() for _ in range(200)]
    assert len({k.plaintext for k in keys}) == 200
    for key in keys[:20]:
        assert key.plaintext.startswith(KEY_PREFIX)
        assert hashes_match(key.key_hash, key.plaintext)
        assert not hashes_match(key.key_hash, key.plaintext + "x")
        assert key.key_hash == hash_api_key(key.plaintext)


def test_ids_are_uuid7_and_sort_by_creation() -> None:
    ids = [new_id() for _ in range(50)]
    assert all(i.version == 7 for i in ids)
    assert len(set(ids)) == 50


@given(st.decimals(min_value=0, max_value=10_000, places=6, allow_nan=False, allow_infinity=False))
def test_prices_convert_to_exact_micro_dollars(price: object) -> None:
    micros = usd_per_mtok_to_micros(str(price), where="test")
    assert isinstance(micros, int)
    assert micros == int(price * 1_000_000)  # type: ignore[operator]


@pytest.mark.parametrize("bad", ["-1", "0.0000001", "abc"])
def test_bad_prices_are_refused(bad: str) -> None:
    with pytest.raises(CatalogError):
        usd_per_mtok_to_micros(bad, where="test")
