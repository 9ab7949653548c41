"""The one path every model call takes, whichever front door asked for it.

Native chat, the OpenAI- and Anthropic-compatible endpoints, and every later front door call ``ModelCall``; none of
them admits, caches, routes, meters or settles anything itself. A call goes:

1. **checked**: the model exists and is a chat model, the request keeps the rules every provider shares, and its
   ``max_tokens`` is within the model's ``max_output_tokens`` (refused, never capped behind the client's back);
2. **the response cache**: an eligible request found there is answered at no cost (still one usage record);
3. **admitted** (``Meter.admit``): the budgets hold the call's most possible cost, the tokens-per-minute policies
   reserve its tokens, or it is refused before the model is asked;
4. **routed** (``ModelBackend``, the router in infrastructure: A/B variants, retries, circuit breakers, fallbacks,
   one deadline for the whole call); a stream returns once it opened (the upstream answered, before any text),
   knowing who serves it;
5. **settled** exactly once however it ended (``Settlement``): done, failed, cut by the upstream, abandoned by the
   client, cut by shutdown: telemetry told, the real cost charged and the hold released, the tokens reconciled, one
   usage record handed to the recorder; in a shielded task, so a cancelled request still records what it cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from application.llm.call_stream import CallStream
from application.llm.observer import NO_OBSERVER, CallObserver
from application.llm.settlement import Settler, failed
from application.usage.context import CallContext
from application.usage.metering import Admission, Meter, Outcome
from application.usage.request_admission import make_pending as make_pending_request_admission
from application.usage.response_cache import CacheStatus, ResponseCache
from domain.llm.errors import ModelNotFound
from domain.llm.model import (
    ChatMessage,
    ChatRole,
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    ModelKind,
    ModelSpec,
    check_completion_request,
    check_embedding_request,
)
from domain.llm.ports import ModelBackend, ModelCatalog
from domain.llm.stream import ModelStream
from domain.llm.tokens import estimate_request_tokens
from domain.shared.errors import RuleViolation
from domain.usage.model import UsageStatus


@dataclass(frozen=True)
class Answer:
    """A whole answer, and whether it came from the response cache."""

    completion: Completion
    cache_status: CacheStatus


class ModelCall:
    def __init__(
        self,
        *,
        models: ModelBackend,
        catalog: ModelCatalog,
        meter: Meter | None = None,
        cache: ResponseCache | None = None,
        observer: CallObserver = NO_OBSERVER,
    ) -> None:
        self._models = models
        self._catalog = catalog
        self._cache = cache
        self._settler = Settler(meter=meter, observer=observer)

    async def complete(self, request: CompletionRequest, context: CallContext) -> Answer:
        self.check(request)
        key = self._cache_key(request, context)
        if key is not None and (hit := await self._hit(key)) is not None:
            await make_pending_request_admission()  # the meter would have made it; a refusal stops the answer
            await self._settler.open(_free(), request, context).settle(
                Outcome(completion=hit, status=UsageStatus.SUCCESS)
            )
            return Answer(hit, CacheStatus.HIT)
        settlement = self._settler.open(await self._settler.admit(request, context), request, context)
        try:
            completion = await self._models.complete(request, caller=context.principal.user_id)
        except BaseException as exc:
            await settlement.settle(failed(request, exc))
            raise
        await settlement.settle(Outcome(completion=completion, status=UsageStatus.SUCCESS))
        if key is not None and self._cache is not None:
            await self._cache.put(key, completion)
        return Answer(completion, CacheStatus.BYPASS if key is None else CacheStatus.MISS)

    async def stream(self, request: CompletionRequest, context: CallContext) -> CallStream:
        """The call's stream, opened when the upstream answered: a failure before that (after retries and fallbacks)
        raises here, settled. Iterate it, and close it however the iteration ends (``aclose``)."""
        self.check(request)
        key = self._cache_key(request, context)
        if key is not None and (hit := await self._hit(key)) is not None:
            await make_pending_request_admission()
            replay = ModelStream.replay(hit)
            return CallStream(replay, self._settler.open(_free(), request, context), cache_status=CacheStatus.HIT)
        admission = await self._settler.admit(request, context)
        settlement = self._settler.open(admission, request, context)
        try:
            opened = await self._models.open_stream(request, caller=context.principal.user_id)
        except BaseException as exc:
            await settlement.settle(failed(request, exc, streamed=True))
            raise
        if key is None or self._cache is None:
            return CallStream(opened, settlement)
        return CallStream(opened, settlement, cache_status=CacheStatus.MISS, cache=(self._cache, key))

    async def embed(self, request: EmbeddingRequest, context: CallContext) -> Embeddings:
        """Embeddings, accounted for like completions: budgets, token limits and one usage record per call."""
        self.check_embedding(request)
        # The meter speaks completions: the texts are the prompt, and nothing is generated.
        messages = tuple(ChatMessage(ChatRole.USER, text) for text in request.inputs)
        as_prompt = CompletionRequest(model=request.model, messages=messages, max_tokens=0)
        admission = await self._settler.admit(as_prompt, context)
        settlement = self._settler.open(admission, as_prompt, context)
        try:
            embeddings = await self._models.embed(request, caller=context.principal.user_id)
        except BaseException as exc:
            self._settler.observer.embedded(request, None, exc, time.monotonic() - admission.started)
            await settlement.settle(failed(as_prompt, exc))
            raise
        self._settler.observer.embedded(request, embeddings, None, time.monotonic() - admission.started)
        completion = Completion(
            content="",
            finish_reason=FinishReason.STOP,
            usage=embeddings.usage,
            served_by=embeddings.served_by,
            attempts=embeddings.attempts,
        )
        await settlement.settle(Outcome(completion=completion, status=UsageStatus.SUCCESS))
        return embeddings

    def check_embedding(self, request: EmbeddingRequest) -> None:
        """What ``embed`` checks before anything is spent: an embedding model of the catalog, a valid request."""
        self._model(request.model, ModelKind.EMBEDDING)
        check_embedding_request(request)

    async def count_input_tokens(self, request: CompletionRequest) -> int:
        """The prompt tokens ``request`` would cost: the serving provider's own count where it has one (Anthropic's
        count_tokens, OpenAI's input_tokens: free calls, no usage record), else the gateway's estimate. Its output
        limit is not checked: a count asks for no answer."""
        self.check(replace(request, max_tokens=None))
        counted = await self._models.count_tokens(request)
        return estimate_request_tokens(request) if counted is None else counted

    def check(self, request: CompletionRequest) -> None:
        """The rules of every call, checked before anything is spent: a chat model of the catalog, the request's
        shared rules, and ``max_tokens`` within the model's output limit (the smallest of its A/B variants)."""
        spec = self._model(request.model, ModelKind.CHAT)
        check_completion_request(request)
        if request.max_tokens is not None and request.max_tokens > spec.max_output_tokens:
            raise RuleViolation(
                f"max_tokens is {request.max_tokens}, above the {spec.max_output_tokens} output tokens model "
                f"'{spec.name}' allows"
            )

    def _model(self, name: str, kind: ModelKind) -> ModelSpec:
        spec = self._catalog.find(name)
        if spec is None:
            raise ModelNotFound(f"model '{name}' does not exist")
        if spec.kind is not kind:
            raise ModelNotFound(
                f"model '{name}' is {article_for(spec.kind)} {spec.kind} model, not {article_for(kind)} {kind} model"
            )
        return spec

    async def drain(self) -> None:
        """Waits for settlements still running (of requests cancelled mid-way); call before closing the recorder."""
        await self._settler.drain()

    def _cache_key(self, request: CompletionRequest, context: CallContext) -> str | None:
        if self._cache is None:
            return None
        return self._cache.key_for(request, context.principal, context.cache)

    async def _hit(self, key: str) -> Completion | None:
        assert self._cache is not None
        found = await self._cache.get(key)
        return None if found is None else replace(found, cached=True)


def _free() -> Admission:
    """A cache hit's admission: nothing held, nothing reserved."""
    return Admission(started=time.monotonic(), spec=None)


def article_for(kind: ModelKind) -> str:
    return "an" if kind is ModelKind.EMBEDDING else "a"
