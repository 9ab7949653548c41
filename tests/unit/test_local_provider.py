from __future__ import annotations

import pytest

from domain.llm.model import ChatMessage, ChatRole, CompletionRequest, FinishReason, StreamEnd, TextDelta
from infrastructure.llm.local import LocalProvider, count_tokens
from tests.unit.conftest import local_spec

pytestmark = pytest.mark.unit


def _request(text: str, **kwargs: object) -> CompletionRequest:
    messages = (ChatMessage(ChatRole.SYSTEM, "Be kind."), ChatMessage(ChatRole.USER, text))
    return CompletionRequest(model="local", messages=messages, **kwargs)  # type: ignore[arg-type]


async def test_answers_are_deterministic_and_derived_from_the_prompt() -> None:
    provider = LocalProvider(local_spec())
    first = await provider.complete(_request("What is a gateway?"))
    again = await provider.complete(_request("What is a gateway?"))
    other = await provider.complete(_request("Something else"))
    assert first.content == again.content
    assert "What is a gateway?" in first.content
    assert first.content != other.content


async def test_token_counts_are_honest() -> None:
    provider = LocalProvider(local_spec())
    request = _request("count these five words")
    completion = await provider.complete(request)
    assert completion.usage.input_tokens == count_tokens("Be kind.") + count_tokens("count these five words")
    assert completion.usage.output_tokens == count_tokens(completion.content)
    assert completion.finish_reason is FinishReason.STOP
    assert completion.served_by.provider == "local"


async def test_stream_yields_chunks_that_join_to_the_completion() -> None:
    provider = LocalProvider(local_spec())
    events = [e async for e in provider.stream(_request("stream me please"))]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3
    assert isinstance(events[-1], StreamEnd)
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    assert "".join(deltas) == events[-1].completion.content
    assert events[-1].completion.content == (await provider.complete(_request("stream me please"))).content


async def test_max_tokens_and_stop_sequences() -> None:
    provider = LocalProvider(local_spec())
    cut = await provider.complete(_request("a b c d e f g h", max_tokens=3))
    assert cut.finish_reason is FinishReason.LENGTH
    assert cut.usage.output_tokens <= 3
    stopped = await provider.complete(_request("alpha beta gamma", stop=("beta",)))
    assert "beta" not in stopped.content
    assert stopped.finish_reason is FinishReason.STOP
