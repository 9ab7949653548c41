"""The clock port: use cases ask it for the time so that tests can control it."""

from __future__ import annotations

import abc
from datetime import UTC, datetime


class Clock(abc.ABC):
    @abc.abstractmethod
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)
