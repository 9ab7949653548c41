"""Jobs: long work (batch lines, file ingestion) dispatched by a queue and run by workers.

The database holds the state of the work; a job only says which piece of work to look at (``args``), so running
a job twice must change nothing the second time (handlers are idempotent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

DEFAULT_QUEUE = "switchboard"


@dataclass(frozen=True)
class Job:
    task: str
    args: Mapping[str, str] = field(default_factory=dict)


JobHandler = Callable[[Mapping[str, str]], Awaitable[None]]
