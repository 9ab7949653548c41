"""The composition root: the one place that knows every concrete class."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from application.admin.get_all_usage import GetAllUsage
from application.admin.list_users import ListUsers
from application.admin.update_api_key import UpdateApiKey
from application.admin.update_user import UpdateUser
from application.auth.authenticate import Authenticate
from application.auth.create_api_key import CreateApiKey
from application.auth.get_current_user import GetCurrentUser
from application.auth.list_api_keys import ListApiKeys
from application.auth.log_in import LogIn
from application.auth.log_out import LogOut
from application.auth.principal_cache import PrincipalCache
from application.auth.refresh_session import RefreshSession
from application.auth.register_user import RegisterUser
from application.auth.resilient_throttle import ResilientLoginThrottle
from application.auth.revoke_api_key import RevokeApiKey
from application.batches.batch_results import BatchResults
from application.batches.cancel_batch import CancelBatch
from application.batches.config import BatchLimits
from application.batches.create_batch import CreateBatch
from application.batches.create_message_batch import MESSAGES, CreateMessageBatch
from application.batches.delete_message_batch import DeleteMessageBatch
from application.batches.finalize_batch import FinalizeBatch
from application.batches.get_batch import GetBatch
from application.batches.lines import LineCodec, ResultFormat
from application.batches.list_batches import ListBatches
from application.batches.prepare_batch import PrepareBatch
from application.batches.rate_share import BatchRateShare
from application.batches.resume_batches import ResumeBatches
from application.batches.run_batch import RunBatch
from application.chat.create_conversation import CreateConversation
from application.chat.delete_conversation import DeleteConversation
from application.chat.exchange import ExchangeLimits
from application.chat.get_conversation import GetConversation
from application.chat.list_conversations import ListConversations
from application.chat.post_message import PostMessage
from application.chat.stream_message import StreamMessage
from application.chat.update_conversation import UpdateConversation
from application.compat.count_tokens import CountTokens
from application.compat.create_completion import CreateCompletion
from application.compat.create_embeddings import CreateEmbeddings
from application.compat.stream_completion import StreamCompletion
from application.credentials.delete_provider_credential import DeleteProviderCredential
from application.credentials.list_provider_credentials import ListProviderCredentials
from application.credentials.put_provider_credential import PutProviderCredential
from application.credentials.rotate_provider_credentials import RotateProviderCredentials
from application.files.delete_file import DeleteFile
from application.files.get_file import GetFile, GetFileContent
from application.files.list_files import ListFiles
from application.files.upload_file import UploadFile
from application.idempotency.guard import IdempotencyGuard
from application.llm.model_call import ModelCall
from application.models.get_model import GetModel
from application.models.list_models import ListModels
from application.responses.cancel_response import CancelResponse
from application.responses.count_input_tokens import CountInputTokens
from application.responses.create_response import CreateResponse
from application.responses.delete_response import DeleteResponse
from application.responses.get_response import GetResponse
from application.responses.recover_background_responses import RecoverBackgroundResponses
from application.responses.run_background_response import RunBackgroundResponse
from application.responses.start_background_response import StartBackgroundResponse
from application.responses.stream_response import StreamResponse
from application.unit_of_work import UnitOfWorkFactory
from application.usage.budgets import Budgets
from application.usage.check_request_rate import CheckRequestRate
from application.usage.get_usage import GetUsage
from application.usage.metering import Meter
from application.usage.rate_limits import RateLimitDefaults
from application.usage.response_cache import ResponseCache
from application.vectors.attach_file import AttachFile
from application.vectors.create_vector_store import CreateVectorStore
from application.vectors.delete_vector_store import DeleteVectorStore
from application.vectors.detach_file import DetachFile
from application.vectors.file_batches import CancelFileBatch, CreateFileBatch, GetFileBatch
from application.vectors.file_search import FileSearchRetrieval
from application.vectors.get_store_file import GetStoreFile, GetStoreFileContent
from application.vectors.get_vector_store import GetVectorStore
from application.vectors.ingest_file import IngestFile
from application.vectors.list_store_files import ListStoreFiles
from application.vectors.list_vector_stores import ListVectorStores
from application.vectors.resume_ingestion import ResumeIngestion
from application.vectors.search_vector_stores import SearchVectorStores
from application.vectors.update_store_file import UpdateStoreFile
from application.vectors.update_vector_store import UpdateVectorStore
from domain.auth.ports import LoginThrottle, SessionRevocations
from domain.batches.model import BatchKind
from domain.files.ports import BlobStore
from domain.jobs.ports import JobWorker
from domain.shared.clock import Clock, SystemClock
from domain.usage.ports import CompletionCache, RateLimiter, SpendCounter, UsageRecorder
from infrastructure.credentials.lookup import CachedCredentialLookup
from infrastructure.db.engine import create_engine, create_session_factory
from infrastructure.db.repositories.files import SqlAlchemyBlobStore
from infrastructure.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from infrastructure.files.filesystem import FilesystemBlobStore
from infrastructure.jobs.in_process import InProcessJobQueue, InProcessJobWorker
from infrastructure.llm.catalog import load_catalog
from infrastructure.llm.registry import build_router
from infrastructure.memory.completion_cache import InMemoryCompletionCache
from infrastructure.memory.files import InMemoryBlobStore
from infrastructure.memory.login_throttle import InMemoryLoginThrottle
from infrastructure.memory.rate_limiter import InMemoryRateLimiter
from infrastructure.memory.session_revocations import InMemorySessionRevocations
from infrastructure.memory.spend_counter import InMemorySpendCounter
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from infrastructure.observability.llm import CallTelemetry, LLMTelemetry
from infrastructure.observability.metrics import Metrics
from infrastructure.observability.readiness import Readiness, data_directory
from infrastructure.observability.security import SecurityLog
from infrastructure.observability.tracing import Tracing, build_tracer_provider, instrument_engine
from infrastructure.security.common_passwords import SetCommonPasswords
from infrastructure.security.credential_cipher import AesGcmSecretCipher
from infrastructure.security.passwords import Argon2PasswordHasher
from infrastructure.security.tokens import LEEWAY_SECONDS as TOKEN_LEEWAY_SECONDS
from infrastructure.security.tokens import JwtTokenService, VerificationKey
from infrastructure.settings import Settings
from infrastructure.usage.buffered_recorder import BufferedUsageRecorder
from infrastructure.usage.journal import JournalUsageRecorder
from infrastructure.usage.ledger_writer import LedgerWriter
from infrastructure.vectors.factory import vector_index_for
from infrastructure.vectors.parsers import LibraryDocumentParser

if TYPE_CHECKING:  # the Redis client is imported only when a Redis URL is configured
    from redis.asyncio import Redis
from interfaces.http.lifecycle import Shutdown

MEMORY_DATABASE_URL = "memory://"


def _engine(settings: Settings, tracing: Tracing) -> AsyncEngine | None:
    if settings.database_url == MEMORY_DATABASE_URL:
        return None
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        connect_timeout=settings.database_connect_timeout_seconds,
        echo=settings.database_echo,
    )
    if tracing.tracer is not None:
        instrument_engine(engine, tracing.tracer)
    return engine


USAGE_POOL_SIZE = 2  # the ledger writers: one flush at a time each (the stream's, the journal's)


def _usage_engine(settings: Settings, engine: AsyncEngine | None) -> AsyncEngine | None:
    """The usage writers' own small pool on PostgreSQL, so that under overload they never wait behind request
    traffic for a connection (nor requests behind them). SQLite has one writer anyway: they share its pool."""
    if engine is None or engine.dialect.name != "postgresql":
        return None
    return create_engine(
        settings.database_url,
        pool_size=USAGE_POOL_SIZE,
        max_overflow=0,
        pool_timeout=settings.database_pool_timeout_seconds,
        connect_timeout=settings.database_connect_timeout_seconds,
        echo=settings.database_echo,
    )


def _usage_uow(usage_engine: AsyncEngine | None, uow: UnitOfWorkFactory) -> UnitOfWorkFactory:
    return uow if usage_engine is None else SqlAlchemyUnitOfWorkFactory(create_session_factory(usage_engine))


def _previous_jwt_keys(settings: Settings) -> list[VerificationKey]:
    return [VerificationKey(k.secret.get_secret_value(), k.not_after) for k in settings.jwt_previous_keys]


def _readiness(settings: Settings, engine: AsyncEngine | None) -> Readiness:
    return Readiness(
        engine=engine,
        redis_url=settings.redis_url,
        disk_path=data_directory(settings.database_url, settings.disk_check_path),
        min_free_bytes=settings.disk_min_free_mb * 1024 * 1024,
        timeout_seconds=settings.readiness_timeout_seconds,
    )


def _uow_factory(
    settings: Settings, engine: AsyncEngine | None, security_log: SecurityLog, job_queue: InProcessJobQueue
) -> UnitOfWorkFactory:
    # Audit entries reach the security log once their transaction has committed. Jobs go to procrastinate's table
    # in the transaction on PostgreSQL, to the in-process queue after the commit otherwise.
    if engine is None:
        return InMemoryUnitOfWorkFactory(on_audit=security_log.admin_changes, job_queue=job_queue)
    return SqlAlchemyUnitOfWorkFactory(
        create_session_factory(engine), on_audit=security_log.admin_changes, job_queue=job_queue
    )


def _blob_store(settings: Settings, engine: AsyncEngine | None) -> BlobStore:
    """Where file contents live (``file_storage``): ``auto`` is a directory beside a SQLite file (the embedded
    default), the database's ``file_blobs`` table otherwise, and a dict for the ``memory://`` backend."""
    storage = settings.file_storage
    if storage == "auto":
        if engine is None:
            return InMemoryBlobStore()
        storage = "filesystem" if engine.dialect.name == "sqlite" else "database"
    if storage == "filesystem":
        directory = settings.file_storage_path or data_directory(settings.database_url, None) / "files"
        return FilesystemBlobStore(directory)
    if engine is None:
        return InMemoryBlobStore()
    return SqlAlchemyBlobStore(create_session_factory(engine))


def _redis(settings: Settings) -> Redis | None:
    if settings.redis_url is None:
        return None
    from infrastructure.redis.client import create_redis

    return create_redis(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds)


def _principal_cache(settings: Settings, redis: Redis | None) -> PrincipalCache:
    if redis is None:
        return PrincipalCache(ttl_seconds=settings.auth_cache_ttl_seconds)
    from infrastructure.redis.principal_invalidation import BroadcastPrincipalCache

    return BroadcastPrincipalCache(
        ttl_seconds=settings.auth_cache_ttl_seconds, redis=redis, prefix=settings.redis_key_prefix
    )


def _session_revocations(settings: Settings, redis: Redis | None) -> SessionRevocations:
    """Kept as long as an access token is accepted (its lifetime and the decoder's leeway), then forgotten."""
    ttl_seconds = settings.access_token_ttl_seconds + TOKEN_LEEWAY_SECONDS + 1
    if redis is None:
        return InMemorySessionRevocations(ttl_seconds=ttl_seconds)
    from infrastructure.redis.session_revocations import RedisSessionRevocations

    return RedisSessionRevocations(
        ttl_seconds=ttl_seconds, redis=redis, prefix=settings.redis_key_prefix, fail_open=_fail_open(settings)
    )


def _rate_limiter(settings: Settings, redis: Redis | None) -> RateLimiter:
    if redis is None:
        return InMemoryRateLimiter()
    from infrastructure.redis.rate_limiter import RedisRateLimiter

    return RedisRateLimiter(redis, prefix=settings.redis_key_prefix)


def _spend_counter(settings: Settings, redis: Redis | None) -> SpendCounter:
    if redis is None:
        return InMemorySpendCounter()
    from infrastructure.redis.spend_counter import RedisSpendCounter

    return RedisSpendCounter(redis, prefix=settings.redis_key_prefix)


def _credential_cipher(settings: Settings) -> AesGcmSecretCipher:
    return AesGcmSecretCipher(settings.credential_encryption_keys())


def _response_cache(settings: Settings, redis: Redis | None) -> ResponseCache | None:
    if not settings.cache_enabled:
        return None
    cache: CompletionCache
    if redis is None:
        cache = InMemoryCompletionCache(max_entries=settings.cache_max_entries)
    else:
        from infrastructure.redis.completion_cache import RedisCompletionCache

        cache = RedisCompletionCache(redis, prefix=settings.redis_key_prefix)
    return ResponseCache(cache=cache, ttl_seconds=settings.cache_ttl_seconds, shared=settings.cache_shared)


def _login_throttle(settings: Settings, redis: Redis | None, clock: Clock) -> LoginThrottle:
    """In process without Redis; in Redis with it, counting in process while Redis is down when the failure mode
    is ``open`` and refusing log-ins (503) when it is ``closed``: never without a throttle."""
    limits = {
        "max_per_account": settings.login_max_failures_per_account,
        "max_per_address": settings.login_max_failures_per_address,
        "window_seconds": settings.login_throttle_window_seconds,
    }
    local = InMemoryLoginThrottle(clock=clock, **limits)
    if redis is None:
        return local
    from infrastructure.redis.login_throttle import RedisLoginThrottle

    # Counter keys are HMACs under the signing secret: every instance that accepts the same tokens shares them.
    shared = RedisLoginThrottle(redis, prefix=settings.redis_key_prefix, secret=settings.signing_secret(), **limits)
    return ResilientLoginThrottle(shared=shared, local=local if _fail_open(settings) else None)


def _usage_recorder(settings: Settings, uow: UnitOfWorkFactory, redis: Redis | None) -> UsageRecorder:
    """Durable before a call is answered: in the Redis stream (the local journal when Redis does not answer), or
    in the local journal without Redis. Only the throwaway in-memory database keeps records in memory."""
    if settings.database_url == MEMORY_DATABASE_URL:
        return BufferedUsageRecorder(
            uow=uow,
            capacity=settings.usage_buffer_size,
            batch_size=settings.usage_batch_size,
            flush_interval_seconds=settings.usage_flush_interval_seconds,
            close_timeout_seconds=settings.usage_close_timeout_seconds,
        )
    journal = JournalUsageRecorder(
        uow=uow,
        directory=settings.usage_journal_directory,
        capacity=settings.usage_buffer_size,
        batch_size=settings.usage_batch_size,
        flush_interval_seconds=settings.usage_flush_interval_seconds,
        close_timeout_seconds=settings.usage_close_timeout_seconds,
    )
    if redis is None or settings.redis_url is None:
        return journal
    from infrastructure.redis.client import create_redis
    from infrastructure.redis.usage_stream import RedisStreamUsageRecorder

    # The consumer's blocking reads get connections of their own, with room for the block in their timeout.
    reader = create_redis(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds + 2, max_connections=4)
    return RedisStreamUsageRecorder(
        redis=redis,
        reader=reader,
        prefix=settings.redis_key_prefix,
        ledger=LedgerWriter(uow=uow, batch_size=settings.usage_batch_size),
        fallback=journal,
        batch_size=settings.usage_batch_size,
        flush_interval_seconds=settings.usage_flush_interval_seconds,
        max_length=settings.usage_stream_max_length,
        claim_idle_seconds=settings.usage_claim_idle_seconds,
        close_timeout_seconds=settings.usage_close_timeout_seconds,
    )


def _rate_limit_defaults(settings: Settings) -> RateLimitDefaults:
    return RateLimitDefaults(
        key_requests_per_minute=settings.rate_limit_key_rpm,
        key_tokens_per_minute=settings.rate_limit_key_tpm,
        user_requests_per_minute=settings.rate_limit_user_rpm,
        user_tokens_per_minute=settings.rate_limit_user_tpm,
        global_requests_per_minute=settings.rate_limit_global_rpm,
        global_tokens_per_minute=settings.rate_limit_global_tpm,
    )


def _batch_limits(settings: Settings) -> BatchLimits:
    return BatchLimits(
        max_lines=settings.batch_max_lines,
        line_concurrency=settings.batch_line_concurrency,
        lease_seconds=settings.batch_lease_seconds,
        jobs_per_batch=settings.batch_jobs_per_batch,
        rate_limit_share=settings.batch_rate_limit_share,
    )


def _openai_batch_codecs() -> dict[str, LineCodec]:
    """Each OpenAI endpoint's batch lines, parsed and rendered by its front door's own schemas and shapes."""
    from interfaces.http.compat.batch_lines import openai_line_codecs

    return openai_line_codecs()


def _batch_codecs(openai: dict[str, LineCodec], messages: LineCodec) -> dict[str, LineCodec]:
    """Every endpoint a batch line may ask: OpenAI's, and Anthropic's ``/v1/messages`` (message batches)."""
    return {**openai, MESSAGES: messages}


def _message_lines() -> LineCodec:
    from interfaces.http.compat.message_batch_lines import MessageLines

    return MessageLines()


def _batch_result_formats() -> dict[BatchKind, ResultFormat]:
    """Kinds whose results are rendered on demand (no output files)."""
    from interfaces.http.compat.message_batch_lines import MessageBatchResults

    return {BatchKind.ANTHROPIC: MessageBatchResults()}


def _batch_formats() -> dict[BatchKind, ResultFormat]:
    from interfaces.http.compat.batch_lines import OpenAIBatchOutput

    return {BatchKind.OPENAI: OpenAIBatchOutput()}


def _job_worker(settings: Settings, engine: AsyncEngine | None, queue: InProcessJobQueue) -> JobWorker:
    """procrastinate's workers on PostgreSQL (imported only here: a server that only enqueues never loads it); the
    in-process queue's worker otherwise."""
    if engine is not None and engine.dialect.name == "postgresql":
        from infrastructure.jobs.procrastinate_queue import ProcrastinateJobWorker

        return ProcrastinateJobWorker(
            settings.database_url,
            concurrency=settings.worker_concurrency,
            grace_seconds=settings.graceful_shutdown_seconds,
            lease_seconds=settings.worker_lease_seconds,
            poll_seconds=settings.worker_poll_seconds,
        )
    return InProcessJobWorker(
        queue, concurrency=settings.worker_concurrency, grace_seconds=settings.graceful_shutdown_seconds
    )


def _fail_open(settings: Settings) -> bool:
    return settings.redis_failure_mode == "open"


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    # Telemetry. Tracing is off (no SDK provider, nothing wrapped) unless an OTLP endpoint is set; tests override
    # ``tracer_provider`` with one that exports to memory.
    metrics = providers.Singleton(Metrics)
    tracer_provider = providers.Singleton(
        build_tracer_provider,
        settings.provided.otlp_endpoint,
        service_name=settings.provided.otel_service_name,
        sample_ratio=settings.provided.trace_sample_ratio,
    )
    tracing = providers.Singleton(Tracing, tracer_provider)
    llm_telemetry = providers.Singleton(LLMTelemetry, metrics, tracing.provided.tracer)
    security_log = providers.Singleton(SecurityLog)
    shutdown = providers.Singleton(Shutdown, settings.provided.graceful_shutdown_seconds)

    # A Singleton, not an async Resource: an async Resource would put every dependent provider in async mode, making
    # each injection a Future to await on the request path. ``close_resources`` disposes of the pool instead.
    engine = providers.Singleton(_engine, settings, tracing)
    readiness = providers.Singleton(_readiness, settings, engine)
    job_queue = providers.Singleton(InProcessJobQueue)  # the embedded default's; PostgreSQL's is procrastinate
    uow = providers.Singleton(_uow_factory, settings, engine, security_log, job_queue)
    usage_engine = providers.Singleton(_usage_engine, settings, engine)
    usage_uow = providers.Singleton(_usage_uow, usage_engine, uow)

    hasher = providers.Singleton(
        Argon2PasswordHasher,
        time_cost=settings.provided.argon2_time_cost,
        memory_kib=settings.provided.argon2_memory_kib,
        parallelism=settings.provided.argon2_parallelism,
    )
    tokens = providers.Singleton(
        JwtTokenService,
        secret=settings.provided.signing_secret.call(),
        issuer=settings.provided.jwt_issuer,
        audience=settings.provided.jwt_audience,
        access_ttl_seconds=settings.provided.access_token_ttl_seconds,
        refresh_ttl_seconds=settings.provided.refresh_token_ttl_seconds,
        previous_keys=providers.Callable(_previous_jwt_keys, settings),
        clock=clock,
    )
    catalog = providers.Singleton(load_catalog, settings.provided.catalog_path)
    # The provider chain (adapters, each observed, behind resilience, behind the router), built from the catalog.
    # Keys users bring for a provider: sealed under the settings' keys, looked up by the router on each call.
    credential_cipher = providers.Singleton(_credential_cipher, settings)
    credential_lookup = providers.Singleton(
        CachedCredentialLookup,
        uow=uow,
        cipher=credential_cipher,
        ttl_seconds=settings.provided.credential_cache_seconds,
    )
    llm = providers.Singleton(
        build_router,
        catalog,
        settings,
        env=providers.Object(os.environ),
        observer=llm_telemetry,
        credentials=credential_lookup,
    )
    call_telemetry = providers.Singleton(
        CallTelemetry, catalog=catalog, metrics=metrics, log_content=settings.provided.log_message_content
    )

    redis = providers.Singleton(_redis, settings)
    fail_open = providers.Callable(_fail_open, settings)
    login_throttle = providers.Singleton(_login_throttle, settings, redis, clock)
    rate_limiter = providers.Singleton(_rate_limiter, settings, redis)
    rate_limit_defaults = providers.Singleton(_rate_limit_defaults, settings)
    spend_counter = providers.Singleton(_spend_counter, settings, redis)
    usage_recorder = providers.Singleton(_usage_recorder, settings, usage_uow, redis)
    budgets = providers.Singleton(Budgets, counter=spend_counter, uow=uow, clock=clock, fail_open=fail_open)
    meter = providers.Singleton(
        Meter,
        catalog=catalog,
        recorder=usage_recorder,
        budgets=budgets,
        limiter=rate_limiter,
        defaults=rate_limit_defaults,
        clock=clock,
        fail_open=fail_open,
    )
    response_cache = providers.Singleton(_response_cache, settings, redis)
    model_call = providers.Singleton(
        ModelCall, models=llm, catalog=catalog, meter=meter, cache=response_cache, observer=call_telemetry
    )
    check_request_rate = providers.Singleton(
        CheckRequestRate, limiter=rate_limiter, defaults=rate_limit_defaults, fail_open=fail_open
    )

    common_passwords = providers.Singleton(SetCommonPasswords.from_file)
    register_user = providers.Factory(
        RegisterUser, uow=uow, hasher=hasher, common_passwords=common_passwords, clock=clock
    )
    log_in = providers.Factory(LogIn, uow=uow, hasher=hasher, tokens=tokens, clock=clock, throttle=login_throttle)
    session_revocations = providers.Singleton(_session_revocations, settings, redis)
    refresh_session = providers.Factory(
        RefreshSession, uow=uow, tokens=tokens, sessions=session_revocations, clock=clock
    )
    log_out = providers.Factory(LogOut, uow=uow, tokens=tokens, sessions=session_revocations, clock=clock)
    principal_cache = providers.Singleton(_principal_cache, settings, redis)
    authenticate = providers.Singleton(
        Authenticate, uow=uow, tokens=tokens, sessions=session_revocations, clock=clock, cache=principal_cache
    )
    get_current_user = providers.Factory(GetCurrentUser, uow=uow)

    put_provider_credential = providers.Factory(
        PutProviderCredential,
        uow=uow,
        cipher=credential_cipher,
        verifier=llm,
        lookup=credential_lookup,
        clock=clock,
    )
    list_provider_credentials = providers.Factory(ListProviderCredentials, uow=uow)
    delete_provider_credential = providers.Factory(
        DeleteProviderCredential, uow=uow, lookup=credential_lookup, clock=clock
    )
    rotate_provider_credentials = providers.Factory(
        RotateProviderCredentials, uow=uow, cipher=credential_cipher, clock=clock
    )
    create_api_key = providers.Factory(
        CreateApiKey, uow=uow, clock=clock, max_keys_per_user=settings.provided.max_api_keys_per_user
    )
    list_api_keys = providers.Factory(ListApiKeys, uow=uow)
    revoke_api_key = providers.Factory(RevokeApiKey, uow=uow, clock=clock, principals=principal_cache)

    list_users = providers.Factory(ListUsers, uow=uow)
    update_user = providers.Factory(UpdateUser, uow=uow, clock=clock, principals=principal_cache)
    update_api_key = providers.Factory(UpdateApiKey, uow=uow, principals=principal_cache)
    get_usage = providers.Factory(GetUsage, uow=uow, budgets=budgets, clock=clock)
    get_all_usage = providers.Factory(GetAllUsage, uow=uow, clock=clock)

    list_models = providers.Factory(ListModels, catalog=catalog)
    create_conversation = providers.Factory(
        CreateConversation,
        uow=uow,
        catalog=catalog,
        clock=clock,
        max_conversations_per_user=settings.provided.max_conversations_per_user,
    )
    list_conversations = providers.Factory(ListConversations, uow=uow)
    get_conversation = providers.Factory(GetConversation, uow=uow)
    update_conversation = providers.Factory(UpdateConversation, uow=uow, catalog=catalog, clock=clock)
    delete_conversation = providers.Factory(DeleteConversation, uow=uow)
    idempotency = providers.Singleton(
        IdempotencyGuard, uow=uow, clock=clock, ttl_seconds=settings.provided.idempotency_ttl_seconds
    )
    exchange_limits = providers.Singleton(
        ExchangeLimits,
        history=settings.provided.history_limit,
        max_messages=settings.provided.max_messages_per_conversation,
    )

    get_model = providers.Factory(GetModel, catalog=catalog)
    create_completion = providers.Factory(CreateCompletion, model_call=model_call)
    stream_completion = providers.Factory(StreamCompletion, model_call=model_call)
    create_embeddings = providers.Factory(CreateEmbeddings, model_call=model_call)
    count_tokens = providers.Factory(CountTokens, model_call=model_call)
    get_response = providers.Factory(GetResponse, uow=uow, clock=clock)
    start_background_response = providers.Factory(StartBackgroundResponse, uow=uow, model_call=model_call, clock=clock)
    run_background_response = providers.Factory(RunBackgroundResponse, uow=uow, model_call=model_call, clock=clock)
    cancel_response = providers.Factory(CancelResponse, uow=uow, clock=clock)
    recover_background_responses = providers.Factory(RecoverBackgroundResponses, uow=uow)
    resume_ingestion = providers.Factory(ResumeIngestion, uow=uow)
    delete_response = providers.Factory(DeleteResponse, uow=uow)
    count_input_tokens = providers.Factory(CountInputTokens, uow=uow, model_call=model_call, clock=clock)

    blob_store = providers.Singleton(_blob_store, settings, engine)
    # By the database: memory:// (and in-memory SQLite) in memory, an SQLite file embedded, PostgreSQL pgvector.
    vector_index = providers.Singleton(vector_index_for, engine)
    upload_file = providers.Factory(
        UploadFile, uow=uow, blobs=blob_store, clock=clock, max_bytes=settings.provided.files_max_bytes
    )
    list_files = providers.Factory(ListFiles, uow=uow, clock=clock)
    get_file = providers.Factory(GetFile, uow=uow, clock=clock)
    get_file_content = providers.Factory(GetFileContent, uow=uow, blobs=blob_store, clock=clock)
    delete_file = providers.Factory(DeleteFile, uow=uow, blobs=blob_store, clock=clock)

    # Vector stores, on the vector index above.
    document_parser = providers.Singleton(LibraryDocumentParser)
    create_vector_store = providers.Factory(
        CreateVectorStore,
        uow=uow,
        catalog=catalog,
        clock=clock,
        default_model=settings.provided.vector_store_embedding_model,
    )
    list_vector_stores = providers.Factory(ListVectorStores, uow=uow, clock=clock)
    get_vector_store = providers.Factory(GetVectorStore, uow=uow, clock=clock)
    update_vector_store = providers.Factory(UpdateVectorStore, uow=uow, clock=clock)
    delete_vector_store = providers.Factory(DeleteVectorStore, uow=uow, index=vector_index)
    attach_file = providers.Factory(AttachFile, uow=uow, clock=clock)
    list_store_files = providers.Factory(ListStoreFiles, uow=uow)
    get_store_file = providers.Factory(GetStoreFile, uow=uow)
    get_store_file_content = providers.Factory(GetStoreFileContent, uow=uow, index=vector_index)
    update_store_file = providers.Factory(UpdateStoreFile, uow=uow, index=vector_index, clock=clock)
    detach_file = providers.Factory(DetachFile, uow=uow, index=vector_index)
    create_file_batch = providers.Factory(CreateFileBatch, uow=uow, clock=clock)
    get_file_batch = providers.Factory(GetFileBatch, uow=uow)
    cancel_file_batch = providers.Factory(CancelFileBatch, uow=uow)
    search_vector_stores = providers.Factory(
        SearchVectorStores, uow=uow, index=vector_index, model_call=model_call, clock=clock
    )
    file_search_retrieval = providers.Factory(FileSearchRetrieval, search=search_vector_stores)
    # The use cases that answer from vector stores come after them: responses' file_search, conversations' stores.
    post_message = providers.Factory(
        PostMessage,
        uow=uow,
        model_call=model_call,
        clock=clock,
        limits=exchange_limits,
        retrieval=file_search_retrieval,
    )
    stream_message = providers.Factory(
        StreamMessage,
        uow=uow,
        model_call=model_call,
        clock=clock,
        limits=exchange_limits,
        retrieval=file_search_retrieval,
    )
    create_response = providers.Factory(
        CreateResponse, uow=uow, model_call=model_call, clock=clock, retrieval=file_search_retrieval
    )
    stream_response = providers.Factory(
        StreamResponse, uow=uow, model_call=model_call, clock=clock, retrieval=file_search_retrieval
    )
    ingest_file = providers.Singleton(
        IngestFile,
        uow=uow,
        blobs=blob_store,
        parser=document_parser,
        index=vector_index,
        model_call=model_call,
        clock=clock,
        batch_size=settings.provided.vector_store_embed_batch_size,
        max_wait_seconds=settings.provided.vector_store_rate_limit_wait_seconds,
    )
    # Batches: the lines' codecs come from the front doors (``interfaces``); the runner is one per process, so
    # that ``batch_line_concurrency`` bounds the lines the whole process runs at once.
    batch_limits = providers.Singleton(_batch_limits, settings)
    openai_batch_codecs = providers.Singleton(_openai_batch_codecs)
    message_lines = providers.Singleton(_message_lines)
    batch_codecs = providers.Singleton(_batch_codecs, openai_batch_codecs, message_lines)
    batch_formats = providers.Singleton(_batch_formats)
    batch_rate_share = providers.Singleton(
        BatchRateShare,
        limiter=rate_limiter,
        defaults=rate_limit_defaults,
        share=settings.provided.batch_rate_limit_share,
        fail_open=fail_open,
    )
    create_batch = providers.Factory(CreateBatch, uow=uow, codecs=openai_batch_codecs, clock=clock)
    create_message_batch = providers.Factory(
        CreateMessageBatch, uow=uow, codec=message_lines, model_call=model_call, clock=clock, limits=batch_limits
    )
    delete_message_batch = providers.Factory(DeleteMessageBatch, uow=uow)
    batch_results = providers.Factory(BatchResults, uow=uow, formats=providers.Singleton(_batch_result_formats))
    get_batch = providers.Factory(GetBatch, uow=uow)
    list_batches = providers.Factory(ListBatches, uow=uow)
    cancel_batch = providers.Factory(CancelBatch, uow=uow, clock=clock)
    prepare_batch = providers.Factory(
        PrepareBatch,
        uow=uow,
        blobs=blob_store,
        model_call=model_call,
        codecs=batch_codecs,
        clock=clock,
        limits=batch_limits,
    )
    finalize_batch = providers.Singleton(FinalizeBatch, uow=uow, blobs=blob_store, clock=clock, formats=batch_formats)
    run_batch = providers.Singleton(
        RunBatch,
        uow=uow,
        model_call=model_call,
        codecs=batch_codecs,
        finalize=finalize_batch,
        clock=clock,
        limits=batch_limits,
        rate_share=batch_rate_share,
    )
    resume_batches = providers.Factory(ResumeBatches, uow=uow)
    job_worker = providers.Singleton(_job_worker, settings, engine, job_queue)


async def close_resources(container: Container) -> None:
    """Closes what the container opened, in order: settlements still running, then the usage recorder (what it
    holds written to the database, or left durable for the next start), the provider clients, Redis and the health
    checks' Redis client, the database pool; and flushes the spans still buffered."""
    try:
        await container.model_call().drain()
        await container.usage_recorder().close()
    finally:
        await container.llm().aclose()
        await container.readiness().aclose()
        for listener in (container.principal_cache(), container.session_revocations()):
            stop_listening = getattr(listener, "aclose", None)
            if stop_listening is not None:
                await stop_listening()
        redis = container.redis()
        if redis is not None:
            await redis.aclose()
        await container.vector_index().close()
        for engine in (container.engine(), container.usage_engine()):
            if engine is not None:
                await engine.dispose()
        container.tracing().shutdown()
