"""The composition root: the one place that knows every concrete class."""

from __future__ import annotations

import os

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from application.admin.list_users import ListUsers
from application.admin.update_user import UpdateUser
from application.auth.authenticate import Authenticate
from application.auth.create_api_key import CreateApiKey
from application.auth.get_current_user import GetCurrentUser
from application.auth.list_api_keys import ListApiKeys
from application.auth.log_in import LogIn
from application.auth.log_out import LogOut
from application.auth.refresh_session import RefreshSession
from application.auth.register_user import RegisterUser
from application.auth.revoke_api_key import RevokeApiKey
from application.chat.create_conversation import CreateConversation
from application.chat.delete_conversation import DeleteConversation
from application.chat.get_conversation import GetConversation
from application.chat.list_conversations import ListConversations
from application.chat.post_message import PostMessage
from application.chat.stream_message import StreamMessage
from application.chat.update_conversation import UpdateConversation
from application.compat.create_completion import CreateCompletion
from application.compat.create_embeddings import CreateEmbeddings
from application.compat.stream_completion import StreamCompletion
from application.llm.gateway import LLMGateway
from application.models.get_model import GetModel
from application.models.list_models import ListModels
from application.unit_of_work import UnitOfWorkFactory
from domain.shared.clock import SystemClock
from infrastructure.db.engine import create_engine, create_session_factory
from infrastructure.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from infrastructure.llm.catalog import load_catalog
from infrastructure.llm.registry import build_router
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from infrastructure.observability.llm import LLMTelemetry, ObservedLLM
from infrastructure.observability.metrics import Metrics
from infrastructure.observability.readiness import Readiness, data_directory
from infrastructure.observability.security import SecurityLog
from infrastructure.observability.tracing import Tracing, build_tracer_provider, instrument_engine
from infrastructure.security.passwords import Argon2PasswordHasher
from infrastructure.security.tokens import JwtTokenService
from infrastructure.settings import Settings
from interfaces.http.lifecycle import Shutdown

MEMORY_DATABASE_URL = "memory://"


def _engine(settings: Settings, tracing: Tracing) -> AsyncEngine | None:
    if settings.database_url == MEMORY_DATABASE_URL:
        return None
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        echo=settings.database_echo,
    )
    if tracing.tracer is not None:
        instrument_engine(engine, tracing.tracer)
    return engine


def _readiness(settings: Settings, engine: AsyncEngine | None) -> Readiness:
    return Readiness(
        engine=engine,
        redis_url=settings.redis_url,
        disk_path=data_directory(settings.database_url, settings.disk_check_path),
        min_free_bytes=settings.disk_min_free_mb * 1024 * 1024,
        timeout_seconds=settings.readiness_timeout_seconds,
    )


def _uow_factory(settings: Settings, engine: AsyncEngine | None, security_log: SecurityLog) -> UnitOfWorkFactory:
    # Audit entries reach the security log once their transaction has committed.
    if engine is None:
        return InMemoryUnitOfWorkFactory(on_audit=security_log.admin_changes)
    return SqlAlchemyUnitOfWorkFactory(create_session_factory(engine), on_audit=security_log.admin_changes)


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
    uow = providers.Singleton(_uow_factory, settings, engine, security_log)

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
    )
    catalog = providers.Singleton(load_catalog, settings.provided.catalog_path)
    llm = providers.Singleton(build_router, catalog, settings, env=providers.Object(os.environ), observer=llm_telemetry)
    observed_llm = providers.Singleton(
        ObservedLLM, llm, catalog=catalog, metrics=metrics, log_content=settings.provided.log_message_content
    )
    gateway = providers.Singleton(LLMGateway, provider=observed_llm, embedder=observed_llm)

    register_user = providers.Factory(RegisterUser, uow=uow, hasher=hasher, clock=clock)
    log_in = providers.Factory(LogIn, uow=uow, hasher=hasher, tokens=tokens, clock=clock)
    refresh_session = providers.Factory(RefreshSession, uow=uow, tokens=tokens, clock=clock)
    log_out = providers.Factory(LogOut, uow=uow, tokens=tokens, clock=clock)
    authenticate = providers.Singleton(Authenticate, uow=uow, tokens=tokens, clock=clock)
    get_current_user = providers.Factory(GetCurrentUser, uow=uow)

    create_api_key = providers.Factory(
        CreateApiKey, uow=uow, clock=clock, max_keys_per_user=settings.provided.max_api_keys_per_user
    )
    list_api_keys = providers.Factory(ListApiKeys, uow=uow)
    revoke_api_key = providers.Factory(RevokeApiKey, uow=uow, clock=clock)

    list_users = providers.Factory(ListUsers, uow=uow)
    update_user = providers.Factory(UpdateUser, uow=uow, clock=clock)

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
    post_message = providers.Factory(
        PostMessage, uow=uow, gateway=gateway, clock=clock, history_limit=settings.provided.history_limit
    )
    stream_message = providers.Factory(
        StreamMessage, uow=uow, gateway=gateway, clock=clock, history_limit=settings.provided.history_limit
    )

    get_model = providers.Factory(GetModel, catalog=catalog)
    create_completion = providers.Factory(CreateCompletion, gateway=gateway, catalog=catalog)
    stream_completion = providers.Factory(StreamCompletion, gateway=gateway, catalog=catalog)
    create_embeddings = providers.Factory(CreateEmbeddings, gateway=gateway, catalog=catalog)


async def close_resources(container: Container) -> None:
    """Closes what the container opened: the database pool, the provider clients, the health checks' Redis client;
    flushes the spans still buffered."""
    await container.llm().aclose()
    await container.readiness().aclose()
    engine = container.engine()
    if engine is not None:
        await engine.dispose()
    container.tracing().shutdown()
