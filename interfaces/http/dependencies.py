"""What a route needs from the container, as a FastAPI dependency that costs nothing.

``Depends(Provide[Container.x])`` with ``@inject`` (dependency-injector's FastAPI wiring) hands FastAPI a
synchronous callable, which FastAPI runs in its thread pool: a thread hop, and a GIL hand-off, for every use case
of every request. ``provided(Container.x)`` is an ``async`` dependency resolving the same provider on the app's
container, on the event loop; a test's ``container.x.override(...)`` still applies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from dependency_injector import providers
from starlette.requests import Request

from interfaces.container import Container


def _name_of(provider: providers.Provider[Any]) -> str:
    for name, candidate in Container.cls_providers.items():
        if candidate is provider:
            return name
    raise LookupError(f"{provider!r} is not a provider of the container")


def provided(provider: providers.Provider[Any]) -> Callable[[Request], Awaitable[Any]]:
    """A dependency returning ``provider``'s object from the running app's container."""
    name = _name_of(provider)

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state.container, name)()

    dependency.__name__ = f"provided_{name}"
    return dependency
