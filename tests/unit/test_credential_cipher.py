"""The cipher of the provider keys users bring: AES-256-GCM, bound to its row, rotated under a new key."""

from __future__ import annotations

import base64
import uuid
from dataclasses import replace

import pytest

from domain.credentials.errors import CredentialEncryptionUnavailable
from domain.credentials.model import SealedSecret, binding, check_secret, hint_of
from domain.shared.errors import RuleViolation
from infrastructure.security.credential_cipher import NONCE_BYTES, AesGcmSecretCipher
from infrastructure.security.credential_keys import decode_key, key_id, new_key
from infrastructure.settings import SettingsError, load_settings

pytestmark = pytest.mark.unit

SECRET = "sk-proj-user-secret-0123456789abcdef"
ADA, BOB = uuid.uuid4(), uuid.uuid4()
OLD, NEW = decode_key(new_key()), decode_key(new_key())


def test_a_secret_round_trips_and_its_ciphertext_shows_nothing_of_it() -> None:
    cipher = AesGcmSecretCipher([NEW])
    sealed = cipher.seal(SECRET, binding(ADA, "openai"))
    assert cipher.open(sealed, binding(ADA, "openai")) == SECRET
    assert sealed.key_id == key_id(NEW)
    assert SECRET.encode() not in sealed.ciphertext
    assert len(sealed.ciphertext) == NONCE_BYTES + len(SECRET.encode()) + 16  # nonce, sealed text, 128-bit tag
    assert SECRET not in repr(sealed)
    assert SECRET not in repr(cipher)
    # A fresh nonce each time: the same secret never seals to the same bytes.
    assert cipher.seal(SECRET, binding(ADA, "openai")).ciphertext != sealed.ciphertext


@pytest.mark.parametrize("position", [0, NONCE_BYTES, -1])  # the nonce, the body, the tag
def test_a_tampered_ciphertext_does_not_open(position: int) -> None:
    cipher = AesGcmSecretCipher([NEW])
    sealed = cipher.seal(SECRET, binding(ADA, "openai"))
    altered = bytearray(sealed.ciphertext)
    altered[position] ^= 0x01
    with pytest.raises(ValueError, match="does not open") as raised:
        cipher.open(replace(sealed, ciphertext=bytes(altered)), binding(ADA, "openai"))
    assert SECRET not in str(raised.value)


@pytest.mark.parametrize(("user", "provider"), [(BOB, "openai"), (ADA, "anthropic")])
def test_a_ciphertext_moved_to_another_row_does_not_open(user: uuid.UUID, provider: str) -> None:
    cipher = AesGcmSecretCipher([NEW])
    sealed = cipher.seal(SECRET, binding(ADA, "openai"))
    with pytest.raises(ValueError, match="does not open"):
        cipher.open(sealed, binding(user, provider))


def test_rotation_seals_under_the_new_key_and_the_old_one_still_opens() -> None:
    before = AesGcmSecretCipher([OLD])
    sealed_old = before.seal(SECRET, binding(ADA, "openai"))
    rotated = AesGcmSecretCipher([NEW, OLD])  # the new key first: it seals; the old one still opens
    assert not rotated.is_current(sealed_old)
    assert rotated.open(sealed_old, binding(ADA, "openai")) == SECRET
    sealed_new = rotated.seal(rotated.open(sealed_old, binding(ADA, "openai")), binding(ADA, "openai"))
    assert rotated.is_current(sealed_new)
    assert sealed_new.key_id == key_id(NEW)
    after = AesGcmSecretCipher([NEW])  # the old key dropped once everything is re-encrypted
    assert after.open(sealed_new, binding(ADA, "openai")) == SECRET
    with pytest.raises(CredentialEncryptionUnavailable, match=key_id(OLD)):
        after.open(sealed_old, binding(ADA, "openai"))


def test_without_a_key_nothing_is_sealed_or_opened() -> None:
    cipher = AesGcmSecretCipher([])
    assert not cipher.available
    with pytest.raises(CredentialEncryptionUnavailable):
        cipher.seal(SECRET, binding(ADA, "openai"))
    with pytest.raises(CredentialEncryptionUnavailable):
        cipher.open(SealedSecret(key_id="x", ciphertext=b"y" * 40), binding(ADA, "openai"))


def test_the_settings_take_keys_newest_first_and_refuse_a_bad_one_without_echoing_it() -> None:
    old, new = new_key(), base64.b64encode(NEW).decode()  # URL-safe or standard base64
    settings = load_settings(credential_keys=f"{new}, {old}", _env_file=None)
    assert settings.credential_encryption_keys() == [NEW, decode_key(old)]
    short = base64.b64encode(b"k" * 16).decode()
    with pytest.raises(SettingsError, match="SWITCHBOARD_CREDENTIAL_KEYS") as raised:
        load_settings(credential_keys=f"{new},{short}", _env_file=None)
    assert short not in str(raised.value)
    assert new not in str(raised.value)


def test_a_secret_is_checked_and_hinted_by_its_last_four_characters() -> None:
    assert check_secret(f"  {SECRET}\n") == SECRET
    assert hint_of(SECRET) == "…cdef"
    for bad in ("short", "sk-with space-0123", "sk-\x00-0123456789"):
        with pytest.raises(RuleViolation) as raised:
            check_secret(bad)
        assert bad not in str(raised.value)
