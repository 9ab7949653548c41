"""A response of the Responses API: one model call, its input, its output and the turns before it.

A stored response is owned by the caller who created it; ``previous_response_id`` continues from it: the next call
sees its ``conversation()`` (the turns it inherited, its own input, its output), never its instructions. The
request's settings, as the API showed them, travel as opaque JSON text: the domain only keeps them for the echo.

A background response (``background``) is stored ``queued`` with the call it is to make (``call``), run by a job
(``queued`` → ``in_progress`` → an end), and may be cancelled until it ends. Its runner beats ``heartbeat_at``
while it runs, so a runner that died is told from one still running.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.llm.model import ChatMessage, ChatRole, Completion, CompletionRequest, FinishReason, TokenUsage, ToolCall
from domain.vectors.citations import Citation, FileSearch

ID_PREFIX = "resp_"


class ResponseStatus(enum.StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"  # cut by the output limit or a content filter: see ``incomplete_reason``
    FAILED = "failed"  # see ``error_code`` and ``error_message``
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (ResponseStatus.QUEUED, ResponseStatus.IN_PROGRESS)


@dataclass(frozen=True, kw_only=True)
class BackgroundCall:
    """What a background response's job needs to make its call as its caller would have: the request's settings
    (its messages are the record's instructions, history and input), the API key it came with (``None``: a
    session), the request id and the cache policy (``default``, ``prefer`` or ``bypass``)."""

    request: CompletionRequest
    api_key_id: uuid.UUID | None = None
    request_id: str = "-"
    cache: str = "default"


@dataclass(kw_only=True)
class ResponseRecord:
    id: uuid.UUID
    owner_id: uuid.UUID
    model: str  # the public model asked for
    status: ResponseStatus
    created_at: datetime
    completed_at: datetime | None = None
    previous_response_id: uuid.UUID | None = None
    instructions: str | None = None
    history: tuple[ChatMessage, ...] = ()  # the turns inherited from the previous response
    input: tuple[ChatMessage, ...] = ()  # this request's own input items
    output_text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: TokenUsage = field(default_factory=TokenUsage)
    incomplete_reason: str | None = None  # "max_output_tokens" or "content_filter"
    error_code: str | None = None
    error_message: str | None = None
    settings_json: str = "{}"  # the request's settings as the API echoes them (tools, text, temperature, ...)
    file_search: FileSearch | None = None  # the search its ``file_search`` tool made before the model answered
    background: bool = False
    call: BackgroundCall | None = None  # a background response's call, until it ended
    heartbeat_at: datetime | None = None  # a background response's runner, last seen alive
    # A background response's text as its runner stored it, beat by beat: the length of ``output_text`` at each beat
    # where it grew. Its streamed events are made from these, so a stream read again (``starting_after``) numbers
    # every event as the first reading did.
    marks: tuple[int, ...] = ()

    @property
    def public_id(self) -> str:
        return public_id(self.id)

    @property
    def citations(self) -> tuple[Citation, ...]:
        """What the output text cites of the file search's passages (none without a file search)."""
        return () if self.file_search is None or not self.output_text else self.file_search.cite(self.output_text)

    def mark(self) -> None:
        """Marks the text as it now stands, if it grew since the last mark."""
        if len(self.output_text) > (self.marks[-1] if self.marks else 0):
            self.marks = (*self.marks, len(self.output_text))

    def abandoned(self, now: datetime, lease: timedelta) -> bool:
        """A background response in progress whose runner has been silent for ``lease``: it died."""
        if not self.background or self.status is not ResponseStatus.IN_PROGRESS:
            return False
        return self.heartbeat_at is None or now - self.heartbeat_at > lease

    def messages(self) -> tuple[ChatMessage, ...]:
        """What the model is asked: the instructions, the inherited turns, then this request's input."""
        system = (ChatMessage(ChatRole.SYSTEM, self.instructions),) if self.instructions else ()
        return system + self.history + self.input

    def conversation(self) -> tuple[ChatMessage, ...]:
        """What a response continuing from this one inherits: the history, the input, then the output."""
        output: tuple[ChatMessage, ...] = ()
        if self.output_text or self.tool_calls:
            output = (ChatMessage(ChatRole.ASSISTANT, self.output_text, tool_calls=self.tool_calls),)
        return self.history + self.input + output

    def finish(self, completion: Completion, *, at: datetime) -> None:
        """The model's answer (whole, or what a failed call had produced) becomes the output."""
        self.output_text = completion.content
        self.tool_calls = completion.tool_calls
        self.usage = completion.usage
        self.completed_at = at
        reason = completion.finish_reason
        if reason is FinishReason.LENGTH:
            self.status, self.incomplete_reason = ResponseStatus.INCOMPLETE, "max_output_tokens"
        elif reason is FinishReason.CONTENT_FILTER:
            self.status, self.incomplete_reason = ResponseStatus.INCOMPLETE, "content_filter"
        elif reason is FinishReason.CANCELLED:
            self.status = ResponseStatus.CANCELLED
        else:
            self.status = ResponseStatus.COMPLETED

    def fail(self, *, code: str, message: str, partial: Completion | None, at: datetime) -> None:
        """The model failed: what it had produced (``partial``) is kept as the output."""
        self._keep(partial)
        self.status, self.error_code, self.error_message, self.completed_at = ResponseStatus.FAILED, code, message, at

    def cancel(self, *, partial: Completion | None, at: datetime) -> None:
        """Stopped before its end (the client left, the server shut down, a cancel): the partial output is kept."""
        self._keep(partial)
        self.status, self.completed_at = ResponseStatus.CANCELLED, at

    def _keep(self, partial: Completion | None) -> None:
        if partial is not None:
            self.output_text, self.tool_calls, self.usage = partial.content, partial.tool_calls, partial.usage


def public_id(response_id: uuid.UUID) -> str:
    return ID_PREFIX + response_id.hex


def parse_public_id(text: str) -> uuid.UUID | None:
    """The id inside ``resp_<32 hex>``; ``None`` for anything else (which can only be someone's unknown id)."""
    if not text.startswith(ID_PREFIX) or len(text) != len(ID_PREFIX) + 32:
        return None
    try:
        return uuid.UUID(hex=text[len(ID_PREFIX) :])
    except ValueError:
        return None
