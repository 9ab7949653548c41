"""Wiring logs and traces around the application from the composition root; the use cases know nothing of it."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dependency_injector import containers, providers
from opentelemetry.trace import Tracer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from infrastructure.llm.catalog import StaticModelCatalog
from infrastructure.observability.logging import configure_logging
from infrastructure.observability.tracing import TRACED_METHODS, trace_use_case
from infrastructure.settings import Settings


def secrets_to_mask(
    settings: Settings, catalog: StaticModelCatalog, env: Mapping[str, str] = os.environ
) -> tuple[str, ...]:
    """Every secret value this process holds: masked in logs wherever it appears, whatever its shape."""
    values = [settings.signing_secret()]
    if settings.metrics_token is not None:
        values.append(settings.metrics_token.get_secret_value())
    for url in (settings.database_url, settings.redis_url):
        try:
            password = make_url(url).password if url else None
        except ArgumentError:
            password = None
        if password:
            values.append(str(password))
    for model in catalog.list():
        for spec in model.deployments:
            key_env = catalog.transport(model.name, spec.variant).api_key_env
            if key_env and env.get(key_env):
                values.append(env[key_env])
    return tuple(values)


def configure_logs(settings: Settings, catalog: StaticModelCatalog) -> None:
    configure_logging(level=settings.log_level, json=settings.json_logs, secrets=secrets_to_mask(settings, catalog))


def trace_use_cases(container: containers.Container, tracer: Tracer) -> None:
    """Overrides every use-case provider (a class of ``application`` with ``execute`` or ``open``) so that what it
    provides is wrapped in spans. Use cases added later are covered without touching this function."""
    for provider in container.providers.values():
        if not isinstance(provider, providers.Factory | providers.Singleton) or provider.overridden:
            continue
        cls = provider.provides
        if not isinstance(cls, type) or not cls.__module__.startswith("application."):
            continue
        if not any(callable(getattr(cls, method, None)) for method in TRACED_METHODS):
            continue
        plain = providers.Factory(cls, *provider.args, **provider.kwargs)
        provider.override(type(provider)(trace_use_case, plain, tracer))
