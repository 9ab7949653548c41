"""All configuration, from ``SWITCHBOARD_*`` environment variables and an optional ``.env`` file.

Validated once at start-up: a bad value stops the process with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CATALOG = Path(__file__).parent / "llm" / "catalog.default.toml"
OWASP_ARGON2_MIN_MEMORY_KIB = 19_456
OWASP_ARGON2_MIN_TIME_COST = 2
MIN_JWT_SECRET_BYTES = 32


class PreviousJwtKey(BaseModel):
    """A retired JWT signing key, still accepted for verification until ``not_after``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: SecretStr
    not_after: AwareDatetime | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "production", "test"] = Field(
        "development", description="`production` refuses unsafe settings (no JWT secret, weak password hashing)."
    )
    host: str = Field("127.0.0.1", description="Address `switchboard serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `switchboard serve` listens on.")

    database_url: str = Field(
        "sqlite+aiosqlite:///./switchboard.db",
        description=(
            "SQLAlchemy async URL: `sqlite+aiosqlite:///path`, `postgresql+asyncpg://user:pass@host/db`, or "
            "`memory://` for throwaway in-process storage."
        ),
    )
    database_pool_size: int = Field(10, ge=1, le=200, description="PostgreSQL connection pool size.")
    database_max_overflow: int = Field(10, ge=0, le=200, description="Extra connections beyond the pool.")
    database_connect_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=120,
        description="PostgreSQL connection attempt timeout: an unreachable database fails fast (503).",
    )
    database_pool_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Longest wait for a pooled connection before a request fails with 503."
    )
    database_echo: bool = Field(False, description="Log every SQL statement (development only).")

    jwt_secret: SecretStr | None = Field(
        None,
        description=(
            "HS256 signing secret, at least 32 bytes; tokens name it by a `kid` derived from it. Required in "
            "production; elsewhere an unset secret is random per process (tokens die with it). Set it whenever several "
            "processes run."
        ),
    )
    jwt_previous_keys: list[PreviousJwtKey] = Field(
        default_factory=list,
        description=(
            'Retired signing secrets still accepted (never used to sign), as a JSON list of `{"secret": ..., '
            '"not_after": ISO-8601 time}`; each is refused from its `not_after` on. See Security: key rotation.'
        ),
    )
    jwt_issuer: str = Field("switchboard", description="`iss` claim of issued tokens.")
    jwt_audience: str = Field("switchboard-api", description="`aud` claim of issued tokens.")
    access_token_ttl_seconds: int = Field(900, ge=60, le=86_400, description="Access token lifetime.")
    refresh_token_ttl_seconds: int = Field(14 * 86_400, ge=300, le=365 * 86_400, description="Refresh token lifetime.")

    argon2_time_cost: int = Field(3, ge=1, description="argon2id iterations (raising it rehashes at next log-in).")
    argon2_memory_kib: int = Field(65_536, ge=8, description="argon2id memory in KiB (production: at least 19456).")
    argon2_parallelism: int = Field(4, ge=1, description="argon2id lanes.")

    login_max_failures_per_account: int = Field(
        5, ge=1, le=1000, description="Failed log-ins one account may have per window before it is throttled (429)."
    )
    login_max_failures_per_address: int = Field(
        50, ge=1, le=100_000, description="Failed log-ins one client address may have per window (429 above)."
    )
    login_throttle_window_seconds: int = Field(
        900, ge=1, le=86_400, description="Window of the log-in failure counts; a throttled caller waits it out."
    )

    catalog_path: Path = Field(DEFAULT_CATALOG, description="Model catalog file (TOML); see the Models section.")
    local_first_token_delay_ms: int = Field(0, ge=0, le=60_000, description="Local model: delay before answering.")
    local_chunk_delay_ms: int = Field(0, ge=0, le=10_000, description="Local model: delay between stream chunks.")

    upstream_max_attempts: int = Field(
        3, ge=1, le=10, description="Upstream calls per model per request, the first included (1: no retry)."
    )
    upstream_backoff_base_seconds: float = Field(
        0.25, gt=0, le=60, description="Retry backoff: the first wait's ceiling, doubled each retry (full jitter)."
    )
    upstream_backoff_max_seconds: float = Field(4.0, gt=0, le=300, description="Retry backoff: the largest ceiling.")
    upstream_retry_after_max_seconds: float = Field(
        10.0, ge=0, le=600, description="A Retry-After longer than this is not waited out: fall back at once."
    )
    upstream_retry_budget_ratio: float = Field(
        0.2, ge=0, le=10, description="Retries allowed per deployment, as a share of its calls over the window."
    )
    upstream_retry_budget_min_retries: int = Field(
        3, ge=0, le=10_000, description="Retries allowed per deployment over the window whatever its traffic."
    )
    upstream_retry_budget_window_seconds: float = Field(
        10.0, gt=0, le=3600, description="Sliding window of the retry budget."
    )
    upstream_max_response_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest upstream response body (a whole stream included); a bigger one is a 502, never stored.",
    )
    breaker_failure_threshold: int = Field(
        5, ge=1, le=1000, description="Consecutive upstream failures that open a deployment's circuit."
    )
    breaker_failure_rate: float = Field(
        0.5, gt=0, le=1, description="Failure rate over the window that opens a deployment's circuit."
    )
    breaker_min_calls: int = Field(
        20, ge=1, le=100_000, description="Calls in the window before the failure rate is considered."
    )
    breaker_window_seconds: float = Field(60.0, gt=0, le=3600, description="Sliding window of the failure rate.")
    breaker_cool_down_seconds: float = Field(
        30.0, gt=0, le=3600, description="How long an open circuit fails fast before letting one probe through."
    )

    auth_cache_ttl_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description=(
            "How long an authenticated caller is remembered in process (0: never). Revocations and limit changes apply "
            "at once in every instance sharing Redis (its pub/sub tells them); without Redis, in other instances "
            "within this time."
        ),
    )
    max_api_keys_per_user: int = Field(50, ge=1, description="Active API keys one user may hold.")
    max_conversations_per_user: int = Field(10_000, ge=1, description="Conversations one user may hold.")
    max_messages_per_conversation: int = Field(
        10_000, ge=2, le=1_000_000, description="Messages one conversation may hold (422 above: start a new one)."
    )
    history_limit: int = Field(200, ge=1, le=10_000, description="Newest messages sent to the model as context.")
    idempotency_ttl_seconds: int = Field(
        86_400, ge=60, le=30 * 86_400, description="How long a response is kept for replays of its Idempotency-Key."
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted (413 above).")
    max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request line and headers together (431 above, and the connection is closed).",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description=(
            "Longest wait for a request's headers, from the connection's start or the next request's first byte "
            "(408 after it, and the connection is closed)."
        ),
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Longest wait for a whole request body once its headers are in (408 after it, connection closed).",
    )
    keep_alive_timeout_seconds: int = Field(
        5, ge=1, le=300, description="How long an idle keep-alive connection is kept open between requests."
    )
    files_max_bytes: int = Field(
        104_857_600, ge=1, description="Largest file `POST /v1/files` accepts, in bytes (413 in OpenAI's shape above)."
    )
    file_storage: Literal["auto", "database", "filesystem"] = Field(
        "auto",
        description=(
            "Where file contents live: `database` (a table; every instance reads them), `filesystem` (a directory, "
            "`SWITCHBOARD_FILE_STORAGE_PATH`; shared by instances only on a shared volume), `auto`: the filesystem "
            "for SQLite, the database otherwise (in memory for `memory://`)."
        ),
    )
    file_storage_path: Path | None = Field(
        None, description="The directory of the `filesystem` file storage; unset: `files/` beside the SQLite file."
    )
    vector_store_embedding_model: str = Field(
        "local-embed",
        min_length=1,
        description=(
            "The catalog's embedding model a vector store uses when its creator names none (`embedding_model`); "
            "chosen at creation, kept for the store's life. `local-embed` works offline."
        ),
    )
    vector_store_embed_batch_size: int = Field(
        128, ge=1, le=2048, description="Chunks per embedding call when a file is ingested into a vector store."
    )
    vector_store_rate_limit_wait_seconds: int = Field(
        900,
        ge=0,
        le=86_400,
        description=(
            "How long an ingestion waits out its owner's rate limits in all (a large file is paced by the tokens per "
            "minute) before the file fails with `rate_limit_exceeded`."
        ),
    )

    redis_url: str | None = Field(
        None,
        description=(
            "Redis for rate limits, budget counters, log-in throttling and the response cache, shared by every "
            "instance (`redis://host:6379/0`). Unset: in-process backends, right for a single process only."
        ),
    )
    redis_key_prefix: str = Field("switchboard:", max_length=100, description="Prefix of every Redis key written.")
    redis_timeout_seconds: float = Field(
        0.25, gt=0, le=10, description="Redis connect and command timeout; past it Redis counts as down."
    )
    redis_failure_mode: Literal["open", "closed"] = Field(
        "open",
        description=(
            "When Redis is down: `open` serves requests without rate limits and budgets (a warning is logged), "
            "`closed` refuses them with 503. The response cache is skipped either way. Log-in throttling is never "
            "off: `open` counts failed log-ins in each process meanwhile, `closed` refuses log-ins with 503."
        ),
    )
    rate_limit_key_rpm: int = Field(600, ge=0, description="Requests per minute per API key (0: no limit).")
    rate_limit_key_tpm: int = Field(0, ge=0, description="Tokens per minute per API key (0: no limit).")
    rate_limit_user_rpm: int = Field(1200, ge=0, description="Requests per minute per user, all keys and sessions.")
    rate_limit_user_tpm: int = Field(1_000_000, ge=0, description="Tokens per minute per user (0: no limit).")
    rate_limit_global_rpm: int = Field(0, ge=0, description="Requests per minute across all users (0: no limit).")
    rate_limit_global_tpm: int = Field(0, ge=0, description="Tokens per minute across all users (0: no limit).")
    cache_enabled: bool = Field(True, description="Answer repeated eligible requests from the response cache.")
    cache_ttl_seconds: int = Field(3600, ge=1, le=30 * 86_400, description="How long a cached answer is served.")
    cache_max_entries: int = Field(10_000, ge=1, description="In-process cache: entries kept (least recently used go).")
    cache_shared: bool = Field(
        False, description="Share cached answers between users (default: each user has their own entries)."
    )
    usage_buffer_size: int = Field(
        10_000,
        ge=1,
        description=(
            "Usage records held in memory: waiting for the journal's next fsync (callers wait beyond it), and kept "
            "for the database writer (beyond it they are read back from the journal)."
        ),
    )
    usage_batch_size: int = Field(1000, ge=1, le=10_000, description="Usage records written per database statement.")
    usage_flush_interval_seconds: float = Field(
        1.0,
        gt=0,
        le=3600,
        description=(
            "Longest a durable usage record (in the journal or the Redis stream) waits before being written to the "
            "database."
        ),
    )
    usage_close_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description=(
            "On shutdown, how long to keep writing usage records to the database; what is left stays in the journal "
            "or the stream, for the next start or another instance."
        ),
    )
    usage_journal_path: Path | None = Field(
        None,
        description=(
            "Directory of the usage journal (records fsynced before a call is answered, when Redis is not "
            "configured or does not answer). Unset: `<database file>.usage-journal` beside the SQLite database, "
            "else `usage-journal` in the working directory. Keep it on a persistent volume."
        ),
    )
    usage_stream_max_length: int = Field(
        1_000_000,
        ge=1,
        description=(
            "With Redis: usage records the stream may hold while the database is behind or down; beyond it new "
            "records go to the local journal."
        ),
    )
    usage_claim_idle_seconds: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description=(
            "With Redis: how long a usage record read by an instance may stay unstored before another instance "
            "takes it over (an instance that died mid-batch)."
        ),
    )

    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (JSON list).")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            "Addresses or CIDRs of reverse proxies (JSON list). Only from these is `X-Forwarded-For` believed: the "
            "client is its rightmost untrusted address. Empty: the peer address is the client."
        ),
    )
    docs_enabled: bool | None = Field(
        None,
        description="Serve /docs and /openapi.json (unset: yes, except in production, where `true` turns them on).",
    )
    behind_tls: bool = Field(
        False,
        description=(
            "The service is reached over HTTPS only (directly or through a TLS-terminating proxy): responses carry "
            "`Strict-Transport-Security`."
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="`json` (one object a line), `console` (coloured, for people), `auto`: json in production."
    )
    log_message_content: bool = Field(
        False, description="Also log prompts and answers of model calls (they may hold personal data; off by default)."
    )
    access_log: bool = Field(True, description="One log line per HTTP request (probes and scrapes only when failing).")
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    metrics_token: SecretStr | None = Field(
        None,
        description=(
            "/metrics requires `Authorization: Bearer <token>`. In production /metrics answers only with this token "
            "(401 while it is unset), unless `SWITCHBOARD_METRICS_PUBLIC=true`."
        ),
    )
    metrics_public: bool = Field(
        False, description="Production only: serve /metrics without a token (e.g. to a scraper on a private network)."
    )
    otlp_endpoint: str | None = Field(
        None,
        description=(
            "OTLP/HTTP collector base URL (`http://collector:4318`); traces are exported there. Unset: tracing is off "
            "and costs nothing."
        ),
    )
    otel_service_name: str = Field("switchboard", description="`service.name` of exported traces.")
    trace_sample_ratio: float = Field(
        1.0, ge=0, le=1, description="Share of new traces recorded (a sampled parent's decision is followed)."
    )
    readiness_timeout_seconds: float = Field(
        2.0, gt=0, le=60, description="Longest wait for each readiness check (database, Redis) before it fails."
    )
    disk_check_path: Path | None = Field(
        None, description="Directory whose free space readiness checks; unset: the SQLite database's, else `.`."
    )
    disk_min_free_mb: int = Field(
        100, ge=0, description="Readiness fails below this much free disk space, in MiB (0: no disk check)."
    )
    graceful_shutdown_seconds: int = Field(
        30,
        ge=1,
        le=3600,
        description=(
            "On SIGTERM: how long in-flight requests and streams may take to finish before they are cut. Keep it "
            "under the orchestrator's kill timeout."
        ),
    )
    workers: int = Field(1, ge=1, le=64, description="Worker processes of `switchboard serve` (`--workers`).")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
        return [entry.strip() for entry in value]

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.usage_batch_size > self.usage_buffer_size:
            raise ValueError("SWITCHBOARD_USAGE_BATCH_SIZE must not exceed SWITCHBOARD_USAGE_BUFFER_SIZE")
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("SWITCHBOARD_ARGON2_MEMORY_KIB must be at least 8 times SWITCHBOARD_ARGON2_PARALLELISM")
        if self.environment == "production":
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if len(secret.encode()) < 32:
                raise ValueError("SWITCHBOARD_JWT_SECRET must be set to at least 32 bytes in production")
            if (
                self.argon2_memory_kib < OWASP_ARGON2_MIN_MEMORY_KIB
                or self.argon2_time_cost < OWASP_ARGON2_MIN_TIME_COST
            ):
                raise ValueError("argon2 parameters are below OWASP's minimum (m=19456 KiB, t=2)")
        elif self.jwt_secret is not None and len(self.jwt_secret.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError("SWITCHBOARD_JWT_SECRET must be at least 32 bytes")
        if any(len(k.secret.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES for k in self.jwt_previous_keys):
            raise ValueError("every secret in SWITCHBOARD_JWT_PREVIOUS_KEYS must be at least 32 bytes")
        return self

    def signing_secret(self) -> str:
        """The configured secret; outside production an unset one becomes a random per-process secret."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.environment == "production":  # pragma: no cover - the validator already refused this
            raise RuntimeError("no JWT secret configured")
        return _EPHEMERAL_SECRET

    @property
    def serves_docs(self) -> bool:
        return self.docs_enabled if self.docs_enabled is not None else self.environment != "production"

    @property
    def metrics_token_required(self) -> bool:
        return self.metrics_token is not None or (self.environment == "production" and not self.metrics_public)

    @property
    def usage_journal_directory(self) -> Path:
        if self.usage_journal_path is not None:
            return self.usage_journal_path
        if self.is_sqlite:
            database = self.database_url.partition("///")[2].split("?", 1)[0]
            if database and database != ":memory:":
                return Path(database + ".usage-journal")
        return Path("usage-journal")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" or (self.log_format == "auto" and self.environment == "production")


_EPHEMERAL_SECRET = secrets.token_urlsafe(48)


class SettingsError(Exception):
    """Configuration is invalid; the message names each bad variable and never echoes a secret value."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_input=False, include_url=False):
            where = "SWITCHBOARD_" + "_".join(str(p) for p in error["loc"]).upper() if error["loc"] else "settings"
            lines.append(f"{where}: {error['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
