"""Security-relevant settings: unsafe production values are refused, secrets never echoed."""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.settings import Settings, SettingsError, load_settings

pytestmark = pytest.mark.unit
SECRET = "s" * 40


def settings(**overrides: Any) -> Settings:
    return load_settings(_env_file=None, **overrides)


def test_previous_jwt_keys_are_read_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SWITCHBOARD_JWT_PREVIOUS_KEYS",
        f'[{{"secret": "{"o" * 40}", "not_after": "2030-01-01T00:00:00Z"}}, {{"secret": "{"q" * 40}"}}]',
    )
    loaded = settings(jwt_secret=SECRET)
    assert [k.not_after.year if k.not_after else None for k in loaded.jwt_previous_keys] == [2030, None]
    assert "o" * 40 not in repr(loaded)


@pytest.mark.parametrize(
    "overrides",
    [
        {"jwt_secret": "short"},
        {"jwt_secret": SECRET, "jwt_previous_keys": [{"secret": "short"}]},
        {"jwt_secret": SECRET, "jwt_previous_keys": [{"secret": SECRET, "not_after": "2030-01-01T00:00:00"}]},
        {"environment": "production"},
        {"environment": "production", "jwt_secret": SECRET, "argon2_memory_kib": 19_455},
        {"environment": "production", "jwt_secret": SECRET, "argon2_time_cost": 1},
    ],
)
def test_unsafe_values_stop_start_up_without_echoing_secrets(overrides: dict[str, Any]) -> None:
    with pytest.raises(SettingsError) as caught:
        settings(**overrides)
    assert "short" not in str(caught.value).replace("SWITCHBOARD", "")


def test_the_defaults_hash_passwords_at_or_above_owasp_minimum() -> None:
    defaults = settings()
    assert defaults.argon2_memory_kib >= 19_456
    assert defaults.argon2_time_cost >= 2
    assert defaults.argon2_parallelism >= 1
