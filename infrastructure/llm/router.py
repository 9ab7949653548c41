"""Routes a request for a public model name to the deployment that serves it, with retries and fallbacks.

For each request the router walks the model and its fallbacks (breadth first, in the catalog's order, each model
once). For each model it draws one deployment (an A/B variant, by weight) and calls it through that deployment's
``Resilience`` (breaker, retry budget, retries). A model that fails with an error a fallback could cure (upstream
unwell, circuit open, credentials refused, a redirect or an HTML page where its API should answer) hands over to
the next; a rejected request (bad input, context too long) does not, as the next model would refuse it too. When
every model fails, the first real upstream failure is raised (a ``CircuitOpen`` only when nothing better is known).

A call has a total deadline, the asked model's (``infrastructure.llm.deadline``): a ``complete`` and the opening
of a ``stream`` run within it, retries and fallbacks included, and a backoff never outlasts it.

Streams retry and fall back only until they open (``open_stream`` returns a ``ModelStream`` opened on the adapter's
``StreamOpened``, sent once the upstream's first event was read, before any text; it knows the deployment serving
it). The front doors send their first event then, so nothing a client has seen is ever retried: from there an error
propagates, with the partial completion attached (``domain.llm.model.partial_completion``) and stamped with the path
the call took. The call's deadline bounds the opening; after it, the silence between two reads is bounded.

A fallback whose ``max_output_tokens`` is below the request's ``max_tokens`` is skipped: a request is never capped
behind the client's back (the model asked for is checked before the call, in the application).

Embedding models have one deployment and no fallback (vectors of two models do not compare); their calls get the
same breaker, budget and retries.

**Keys users bring.** A call made for a user (``caller``) who stored their own key for a deployment's provider
(``CredentialLookup``) goes to that deployment with their key instead of the operator's, on the same connections,
retries and breaker; ``ServedBy.key_owner`` says whose key it was. This is decided per deployment, so a fallback to
another provider uses the operator's key unless the user brought one for that provider too. A user's key the
provider refuses is a ``ProviderKeyRejected`` (it falls back like any refused credentials). ``verify_credential``
checks a key on save against a deployment of its provider.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from functools import partial
from typing import Protocol, runtime_checkable

from domain.credentials.errors import ProviderKeyRejected, ProviderNotSupported
from domain.credentials.ports import CredentialLookup, ProviderKeyVerifier
from domain.llm.errors import ModelNotFound
from domain.llm.model import (
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    KeyOwner,
    ModelSpec,
    ServedBy,
    StreamEnd,
    StreamEvent,
    partial_completion,
    with_partial,
)
from domain.llm.ports import EmbeddingProvider, LLMProvider, ModelBackend, ModelCatalog
from domain.llm.stream import ModelStream
from domain.shared.errors import (
    CircuitOpen,
    NotFound,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamUnavailable,
)
from infrastructure.llm.deadline import within_deadline
from infrastructure.llm.observer import NO_OBSERVER, RouterObserver
from infrastructure.llm.resilience import Clock, Resilience, ResiliencePolicy, Sleep, Tally

log = logging.getLogger(__name__)


def deployment_key(model: str, variant: str | None = None) -> str:
    """The key of a deployment in the router's mapping: the public model name, ``name#label`` for a variant."""
    return model if variant is None else f"{model}#{variant}"


@runtime_checkable
class Closeable(Protocol):
    async def aclose(self) -> None: ...


def _falls_back(error: UpstreamError) -> bool:
    """Whether another model may succeed: the upstream is unwell, refused our credentials, or answered what no API
    answers (a redirect, an HTML page: a wrong ``base_url`` or a proxy in the way)."""
    return error.retryable or isinstance(error, UpstreamAuthError | UpstreamBadResponse)


def _most_meaningful(errors: list[UpstreamError], model: str) -> UpstreamError:
    for error in errors:
        if not isinstance(error, CircuitOpen):
            return error
    return errors[0] if errors else UpstreamUnavailable(f"no deployment can serve '{model}'", model=model)


async def _open(provider: LLMProvider, request: CompletionRequest, served_by: ServedBy) -> ModelStream:
    """Starts a stream and waits for its first event, so that a failure up to there can be retried."""
    return await ModelStream.open(provider.stream(request), served_by)


def _user_key_refused(error: UpstreamError, spec: ModelSpec) -> UpstreamError:
    """A refusal of a user's own key, said as such (never with the provider's words, which may quote the key)."""
    if isinstance(error, UpstreamAuthError) and not isinstance(error, ProviderKeyRejected):
        return ProviderKeyRejected(
            f"{spec.provider} refused your own {spec.provider} key; replace or delete it at "
            "/api/v1/provider-credentials",
            provider=spec.provider,
            model=spec.name,
        )
    return error


class ModelRouter(ModelBackend, ProviderKeyVerifier):
    """The ``ModelBackend`` the model-call service sees: it looks the public model up and hands the call to its
    deployments.

    ``deployments`` maps ``deployment_key(model, variant)`` to the provider serving it; ``embedders`` maps each
    embedding model's name to its provider; ``deadlines`` maps a public model to the seconds a call of it may take.
    """

    def __init__(
        self,
        catalog: ModelCatalog,
        deployments: Mapping[str, LLMProvider],
        *,
        embedders: Mapping[str, EmbeddingProvider] | None = None,
        deadlines: Mapping[str, float] | None = None,
        policy: ResiliencePolicy | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        observer: RouterObserver = NO_OBSERVER,
        credentials: CredentialLookup | None = None,
    ) -> None:
        self._catalog = catalog
        self._credentials = credentials
        # The deployments a user's key can reach: only for these is a caller's key looked up.
        self._keyable = {key for key, provider in deployments.items() if provider.accepts_user_keys}
        self._deployments = dict(deployments)
        self._embedders = dict(embedders or {})
        self._deadlines = dict(deadlines or {})  # seconds per public model; a model without one has no deadline
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - traffic split, not cryptography
        self._observer = observer
        policy = policy or ResiliencePolicy()
        self._resilience = {
            key: Resilience(key, policy, clock=clock, sleep=sleep, rng=self._rng, observer=observer)
            for key in [*self._deployments, *self._embedders]
        }

    @property
    def catalog(self) -> ModelCatalog:
        return self._catalog

    def resilience(self, key: str) -> Resilience:
        """The breaker and budget of one deployment (for health reporting and tests)."""
        return self._resilience[key]

    async def aclose(self) -> None:
        """Closes every deployment's connections."""
        for provider in [*self._deployments.values(), *self._embedders.values()]:
            if isinstance(provider, Closeable):
                await provider.aclose()

    def _chain(self, request: CompletionRequest) -> list[ModelSpec]:
        """The model asked for, then its fallbacks, breadth first, each once, skipping any not deployed and any
        fallback whose output limit is below the request's ``max_tokens`` (never capped behind the client's back;
        the model asked for was checked against it before the call)."""
        model = request.model
        chain = [spec for spec in self._catalog.chain(model) if self._deployed(spec)]
        if not chain or chain[0].name != model:
            raise NotFound(f"model '{model}' does not exist")
        wanted = request.max_tokens
        return [chain[0], *(s for s in chain[1:] if wanted is None or wanted <= s.max_output_tokens)]

    def _deployed(self, spec: ModelSpec) -> bool:
        return all(deployment_key(spec.name, d.variant) in self._deployments for d in spec.deployments)

    def _pick(self, spec: ModelSpec) -> ModelSpec:
        if not spec.variants:
            return spec
        return self._rng.choices(spec.variants, weights=[v.weight for v in spec.variants])[0]

    @staticmethod
    def _routed(request: CompletionRequest, spec: ModelSpec) -> CompletionRequest:
        """The request as ``spec`` is asked it: its own name, and its own output limit when the client set none."""
        wanted = request.max_tokens if request.max_tokens is not None else spec.max_output_tokens
        return replace(request, model=spec.name, max_tokens=wanted)

    @staticmethod
    def _stamp(
        completion: Completion, deployment: ModelSpec, tally: Tally, failed: list[str], owner: KeyOwner
    ) -> Completion:
        served_by = replace(completion.served_by, model=deployment.name, variant=deployment.variant, key_owner=owner)
        return replace(completion, served_by=served_by, attempts=tally.attempts, fallbacks=tuple(failed))

    async def _provider(self, key: str, spec: ModelSpec, caller: uuid.UUID | None) -> tuple[LLMProvider, KeyOwner]:
        """The provider to call for deployment ``key``: with the caller's own key for its provider when they
        brought one, else the operator's."""
        provider = self._deployments[key]
        if caller is None or self._credentials is None or key not in self._keyable:
            return provider, KeyOwner.OPERATOR
        secret = await self._credentials.secret_for(caller, spec.provider)
        keyed = provider.with_credential(secret) if secret is not None else None
        return (provider, KeyOwner.OPERATOR) if keyed is None else (keyed, KeyOwner.USER)

    async def verify(self, provider: str, secret: str) -> None:
        """Checks a user's key for ``provider`` with one cheap call to a deployment of it (the first in the
        catalog), so the key is checked where it will be used."""
        for key, deployed in self._deployments.items():
            if key in self._keyable and self._spec_of(key).provider == provider:
                try:
                    await deployed.verify_credential(secret)
                except UpstreamAuthError:
                    raise ProviderKeyRejected(
                        f"{provider} refused this key", provider=provider, model=self._spec_of(key).name
                    ) from None
                return
        raise ProviderNotSupported(
            f"provider '{provider}' takes no key of a user here: no model of this gateway is served by it with a "
            "key a user may bring (openai, anthropic, gemini and the hosted presets can be; azure_openai, bedrock, "
            "self-hosted servers and local cannot)"
        )

    def _spec_of(self, key: str) -> ModelSpec:
        name, _, variant = key.partition("#")
        spec = self._catalog.find(name)
        assert spec is not None, key
        return spec.deployment(variant or None)

    def _tally(self, model: str) -> Tally:
        seconds = self._deadlines.get(model)
        return Tally(deadline=None if seconds is None else self._clock() + seconds)

    async def complete(self, request: CompletionRequest, *, caller: uuid.UUID | None = None) -> Completion:
        async with within_deadline(self._deadlines.get(request.model), model=request.model):
            return await self._complete(request, self._tally(request.model), caller)

    async def _complete(self, request: CompletionRequest, tally: Tally, caller: uuid.UUID | None) -> Completion:
        failed: list[str] = []
        errors: list[UpstreamError] = []
        for spec in self._chain(request):
            deployment = self._pick(spec)
            key = deployment_key(spec.name, deployment.variant)
            provider, owner = await self._provider(key, deployment, caller)
            call = partial(provider.complete, self._routed(request, spec))
            try:
                completion = await self._resilience[key].call(call, tally)
            except UpstreamError as error:
                exc = _user_key_refused(error, deployment) if owner is KeyOwner.USER else error
                if not _falls_back(exc):
                    if exc is error:
                        raise
                    raise exc from None
                log.warning("model %s failed (%s): falling back", spec.name, exc.code)
                self._observer.fell_back(spec.name, exc)
                failed.append(spec.name)
                errors.append(exc)
                continue
            return self._stamp(completion, deployment, tally, failed, owner)
        raise _most_meaningful(errors, request.model)

    async def count_tokens(self, request: CompletionRequest) -> int | None:
        """The count of the deployment that would serve the model asked for (an A/B variant picked as for a call),
        one attempt, no fallback: a failure is logged and left to the gateway's estimate."""
        spec = self._chain(request)[0]
        deployment = self._pick(spec)
        key = deployment_key(spec.name, deployment.variant)
        try:
            async with within_deadline(self._deadlines.get(request.model), model=request.model):
                return await self._deployments[key].count_tokens(self._routed(request, spec))
        except UpstreamError as exc:
            log.warning("model %s could not count tokens (%s): estimating", spec.name, exc.code)
            return None

    async def open_stream(self, request: CompletionRequest, *, caller: uuid.UUID | None = None) -> ModelStream:
        """The stream of the first model of the chain that opens (within the call's deadline), relayed."""
        tally = self._tally(request.model)
        failed: list[str] = []
        async with within_deadline(self._deadlines.get(request.model), model=request.model):
            opened, key, deployment = await self._first_event(request, tally, failed, caller)
        relay = self._relay(opened, key, deployment, tally, failed, opened.served_by.key_owner)
        return ModelStream(relay, opened.served_by)  # open already: the deployment's stream is

    async def _first_event(
        self, request: CompletionRequest, tally: Tally, failed: list[str], caller: uuid.UUID | None
    ) -> tuple[ModelStream, str, ModelSpec]:
        errors: list[UpstreamError] = []
        for spec in self._chain(request):
            deployment = self._pick(spec)
            key = deployment_key(spec.name, deployment.variant)
            provider, owner = await self._provider(key, deployment, caller)
            served_by = replace(_served_by(deployment), key_owner=owner)
            opening = partial(_open, provider, self._routed(request, spec), served_by)
            try:
                opened = await self._resilience[key].call(opening, tally)
            except UpstreamError as error:
                exc = _user_key_refused(error, deployment) if owner is KeyOwner.USER else error
                if not _falls_back(exc):
                    if exc is error:
                        raise
                    raise exc from None
                log.warning("model %s failed before streaming (%s): falling back", spec.name, exc.code)
                self._observer.fell_back(spec.name, exc)
                failed.append(spec.name)
                errors.append(exc)
                continue
            return opened, key, deployment
        raise _most_meaningful(errors, request.model)

    async def embed(self, request: EmbeddingRequest, *, caller: uuid.UUID | None = None) -> Embeddings:
        embedder = self._embedders.get(request.model)
        if embedder is None:
            raise ModelNotFound(f"embedding model '{request.model}' does not exist")
        spec = self._catalog.find(request.model)
        if spec is None:
            raise ModelNotFound(f"embedding model '{request.model}' does not exist")
        embedder, owner = await self._embedder(spec, embedder, caller)
        tally = Tally()
        try:
            embeddings = await self._resilience[request.model].call(partial(embedder.embed, request), tally)
        except UpstreamError as error:
            if owner is KeyOwner.USER:
                raise _user_key_refused(error, spec) from None
            raise
        served_by = replace(embeddings.served_by, key_owner=owner)
        return replace(embeddings, attempts=tally.attempts, served_by=served_by)

    async def _embedder(
        self, spec: ModelSpec, embedder: EmbeddingProvider, caller: uuid.UUID | None
    ) -> tuple[EmbeddingProvider, KeyOwner]:
        """An embedding model's adapter with the caller's own key for its provider, when they brought one (the
        OpenAI and Gemini adapters serve chat and embeddings alike)."""
        if caller is None or self._credentials is None or not isinstance(embedder, LLMProvider):
            return embedder, KeyOwner.OPERATOR
        if not embedder.accepts_user_keys:
            return embedder, KeyOwner.OPERATOR
        secret = await self._credentials.secret_for(caller, spec.provider)
        keyed = embedder.with_credential(secret) if secret is not None else None
        if isinstance(keyed, EmbeddingProvider):
            return keyed, KeyOwner.USER
        return embedder, KeyOwner.OPERATOR

    async def _relay(
        self, events: ModelStream, key: str, deployment: ModelSpec, tally: Tally, failed: list[str], owner: KeyOwner
    ) -> AsyncGenerator[StreamEvent, None]:
        """Forwards an opened stream, its end stamped with the path it took; from here on an error propagates (and
        counts against the deployment's breaker). Closing this generator closes the upstream."""
        try:
            async for event in events:
                if isinstance(event, StreamEnd):
                    yield StreamEnd(self._stamp(event.completion, deployment, tally, failed, owner))
                    return
                yield event
        except UpstreamError as exc:
            self._resilience[key].breaker.record(exc)
            cut = partial_completion(exc)
            if cut is not None:
                with_partial(exc, self._stamp(cut, deployment, tally, failed, owner))
            raise
        finally:
            await events.aclose()


def _served_by(deployment: ModelSpec) -> ServedBy:
    return ServedBy(
        model=deployment.name,
        provider=deployment.provider,
        upstream_model=deployment.upstream_model,
        variant=deployment.variant,
    )
