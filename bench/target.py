"""Switchboard as the benchmark runs it: its environment, its catalog (models served by the fake upstream), and the
user, API key and conversations the load is sent with."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.storage import Storage

UPSTREAM_KEY_ENV = "BENCH_UPSTREAM_KEY"
UPSTREAM_KEY = "sk-bench-upstream"
MODEL = "bench-openai"
UPSTREAM_MODEL = "gpt-4o-mini"
PROMPT = "Say hello to the benchmark in a few words"
PASSWORD = "benchmark passphrase " + "x" * 12
# The cheapest argon2id parameters production accepts (OWASP's minimum); they cost only the two log-ins of the setup.
BENCH_TPM = 1_000_000_000_000
BENCH_RPM = 1_000_000_000
ARGON2 = {"SWITCHBOARD_ARGON2_TIME_COST": "2", "SWITCHBOARD_ARGON2_MEMORY_KIB": "19456"}
ARGON2_PARALLELISM = "1"

CATALOG = """\
# Written by the benchmark: every model is served by the fake upstream at {base}.
default_model = "{model}"

[models.{model}]
provider = "openai"
upstream_model = "{upstream_model}"
base_url = "{base}/v1"
api_key_env = "{key_env}"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60
timeout_seconds = 30

[models.bench-anthropic]
provider = "anthropic"
upstream_model = "claude-haiku-4-5"
base_url = "{base}"
api_key_env = "{key_env}"
input_usd_per_mtok = 1.00
output_usd_per_mtok = 5.00
timeout_seconds = 30
"""


def write_catalog(directory: Path, upstream_url: str) -> Path:
    path = directory / "catalog.toml"
    text = CATALOG.format(base=upstream_url, model=MODEL, upstream_model=UPSTREAM_MODEL, key_env=UPSTREAM_KEY_ENV)
    path.write_text(text, encoding="utf-8")
    return path


def settings_fields() -> set[str]:
    """The settings this build of Switchboard knows (later branches add Redis, budgets, limits...)."""
    from infrastructure.settings import Settings

    return set(Settings.model_fields)


FEATURE_WORDS = ("redis", "rate_limit", "budget", "usage", "cache", "quota")
NOT_FEATURES = ("retry_budget",)  # the upstream retry budget is resilience, not a spending budget


def feature_settings(fields: set[str]) -> list[str]:
    """The settings of the features (b) should run with (limits, budgets, usage, cache), as this build names them."""
    return sorted(
        f"SWITCHBOARD_{name.upper()}"
        for name in fields
        if any(word in name for word in FEATURE_WORDS) and not any(word in name for word in NOT_FEATURES)
    )


def switchboard_env(
    base: dict[str, str],
    *,
    storage: Storage,
    catalog: Path,
    repo: Path,
    history_limit: int,
    log_level: str,
    fields: set[str],
    extra: dict[str, str],
) -> tuple[dict[str, str], list[str]]:
    """The process environment for ``switchboard serve`` on the production path, and notes on what was set."""
    env = {k: v for k, v in base.items() if not k.startswith("SWITCHBOARD_")}
    env.update(
        {
            "PYTHONPATH": str(repo),
            "SWITCHBOARD_ENVIRONMENT": "production",
            "SWITCHBOARD_DATABASE_URL": storage.database_url,
            "SWITCHBOARD_JWT_SECRET": secrets.token_urlsafe(48),
            **ARGON2,
            "SWITCHBOARD_ARGON2_PARALLELISM": ARGON2_PARALLELISM,
            "SWITCHBOARD_CATALOG_PATH": str(catalog),
            "SWITCHBOARD_HISTORY_LIMIT": str(history_limit),
            "SWITCHBOARD_LOG_LEVEL": log_level,
            "SWITCHBOARD_DOCS_ENABLED": "false",
            # Limits stay ON (every request is counted against key, user and global policies) but high enough that
            # the benchmark measures the gateway, not a stream of fast 429s.
            **{f"SWITCHBOARD_RATE_LIMIT_{scope}_RPM": str(BENCH_RPM) for scope in ("KEY", "USER", "GLOBAL")},
            # Tokens too: the user's default (1,000,000 a minute) refused conversation messages (each holds its
            # 20-message history and the model's output allowance) from concurrency 16 on.
            **{f"SWITCHBOARD_RATE_LIMIT_{scope}_TPM": str(BENCH_TPM) for scope in ("KEY", "USER", "GLOBAL")},
            UPSTREAM_KEY_ENV: UPSTREAM_KEY,
        }
    )
    notes = []
    if storage.redis_url:
        if "redis_url" in fields:
            env["SWITCHBOARD_REDIS_URL"] = storage.redis_url
            # A prefix of its own per run: two benchmarks on one Redis would otherwise share the usage stream, and
            # each server would consume (or drop, if it cannot read them) the other's records.
            env["SWITCHBOARD_REDIS_KEY_PREFIX"] = storage.redis_prefix
        else:
            notes.append("Redis is reachable but this build has no SWITCHBOARD_REDIS_URL setting: not used")
    env.update(extra)
    return env, notes


@dataclass(frozen=True)
class Principal:
    api_key: str
    access_token: str


def create_principal(url: str, email: str) -> Principal:
    """Registers a user, logs in and creates an API key, through the HTTP API."""
    with httpx.Client(base_url=url, timeout=30) as http:
        _expect(http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}), 201)
        tokens = _expect(http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}), 200)
        jwt = {"Authorization": f"Bearer {tokens['access_token']}"}
        key = _expect(http.post("/api/v1/api-keys", json={"name": "benchmark"}, headers=jwt), 201)
    return Principal(api_key=str(key["key"]), access_token=str(tokens["access_token"]))


def create_conversations(url: str, api_key: str, count: int, *, seed_messages: int) -> list[str]:
    """``count`` conversations on the benchmark's model, each with ``seed_messages`` exchanges already in it, so
    that every measured post loads a full history (``SWITCHBOARD_HISTORY_LIMIT`` messages) from the start."""
    auth = {"Authorization": f"Bearer {api_key}"}
    ids = []
    with httpx.Client(base_url=url, timeout=30, headers=auth) as http:
        for n in range(count):
            created = _expect(http.post("/api/v1/conversations", json={"title": f"bench {n}", "model": MODEL}), 201)
            ids.append(str(created["id"]))
            for _ in range(seed_messages):
                _expect(http.post(f"/api/v1/conversations/{created['id']}/messages", json={"content": PROMPT}), 201)
    return ids


@dataclass(frozen=True)
class Probe:
    available: bool
    status: int
    note: str


def probe(url: str, path: str, body: bytes, api_key: str | None) -> Probe:
    """One request to see whether an endpoint exists in this build (404/405: not available) and works (2xx)."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        response = httpx.post(url + path, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        return Probe(False, 0, f"probe failed: {type(exc).__name__}")
    if response.status_code in (404, 405):
        return Probe(False, response.status_code, "not available in this build")
    if not 200 <= response.status_code < 300:
        return Probe(False, response.status_code, f"probe answered {response.status_code}: {response.text[:300]}")
    return Probe(True, response.status_code, "ok")


def _expect(response: httpx.Response, status: int) -> dict[str, object]:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}, "
            f"not {status}: {response.text[:500]}"
        )
    data: dict[str, object] = response.json()
    return data
