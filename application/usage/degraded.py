"""Reporting a backing service that is down without flooding the log: one warning per interval, with a count."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("switchboard.usage")


class DegradedWarning:
    def __init__(self, what: str, *, interval_seconds: float = 10.0) -> None:
        self._what = what
        self._interval = interval_seconds
        self._last = -interval_seconds
        self._suppressed = 0

    def warn(self, error: BaseException, consequence: str) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last warning)" if self._suppressed else ""
        logger.warning("%s unavailable (%s): %s%s", self._what, error, consequence, more)
        self._last, self._suppressed = now, 0
