"""A stateless chat completion answered as a stream of events."""

from __future__ import annotations

from application.compat.create_completion import CompletionCommand
from application.llm.call_stream import CallStream
from application.llm.model_call import ModelCall


class StreamCompletion:
    """Opened on the model's first event (a failure before it raises here, after retries and fallbacks); the
    caller iterates the stream and closes it however the iteration ends."""

    def __init__(self, *, model_call: ModelCall) -> None:
        self._model_call = model_call

    async def open(self, command: CompletionCommand) -> CallStream:
        return await self._model_call.stream(command.request, command.context())
