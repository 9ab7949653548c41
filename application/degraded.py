"""Reporting a backing service that is down without flooding the log: one warning per interval, with a count.

The warning is a stdlib ``logging`` line (the application layer knows no structlog); its ``dependency``,
``consequence`` and ``suppressed`` fields reach the structured log as fields of their own.
"""

from __future__ import annotations

import logging
import time


class DegradedWarning:
    def __init__(self, what: str, *, interval_seconds: float = 10.0, logger: str = "switchboard.usage") -> None:
        self._what = what
        self._logger = logging.getLogger(logger)
        self._interval = interval_seconds
        self._last = -interval_seconds
        self._suppressed = 0

    def warn(self, error: BaseException, consequence: str) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last warning)" if self._suppressed else ""
        self._logger.warning(
            "%s unavailable (%s): %s%s",
            self._what,
            error,
            consequence,
            more,
            extra={"dependency": self._what, "consequence": consequence, "suppressed": self._suppressed},
        )
        self._last, self._suppressed = now, 0
