"""Structured logs with structlog: one JSON object a line in production, coloured lines for people in development.

Our own log lines go straight from structlog to the output (no ``logging`` round trip: it is the fast path the
access log takes on every request); lines of libraries (uvicorn, SQLAlchemy, the stdlib ``logging`` calls of the
adapters) go through a ``logging`` handler that renders them the same way. Both add the request context (request id,
method, path, user and key when known) and pass through the ``Redactor`` last, so no line escapes it.

Everything is written to one sink, stdout by default; ``captured_logs()`` points it at a buffer (tests).
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import orjson
import structlog

from infrastructure.observability.context import current_request
from infrastructure.observability.redaction import Redactor

_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# Libraries that log whole request bodies (message contents) at DEBUG, or a line per HTTP call at INFO: never below.
# Fields of stdlib log lines passed as ``extra=`` that become fields of the structured line (an allow-list: uvicorn,
# for one, passes a ``color_message`` nobody wants in JSON). The application's degraded-service warnings use these.
_EXTRA_FIELDS = ("dependency", "consequence", "suppressed")
_FLOOR = {"openai": logging.INFO, "anthropic": logging.INFO, "httpx": logging.WARNING, "httpcore": logging.WARNING}


class _Sink:
    """A text stream that writes to ``sys.stdout`` as it is at write time, or to a buffer put in its place."""

    def __init__(self) -> None:
        self.target: TextIO | None = None

    def write(self, text: str) -> int:
        return (self.target or sys.stdout).write(text)

    def flush(self) -> None:
        (self.target or sys.stdout).flush()


_SINK = _Sink()
# One list, changed in place by each ``configure_logging``: loggers cached on first use keep seeing the current one.
_PROCESSORS: list[Any] = []
_REDACTOR = Redactor()


def add_request_context(_logger: object, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    context = current_request.get()
    if context is not None:
        event.setdefault("request_id", context.request_id)
        event.setdefault("method", context.method)
        event.setdefault("path", context.path)
        if context.user_id is not None:
            event.setdefault("user_id", context.user_id)
            if context.api_key_id is not None:
                event.setdefault("api_key_id", context.api_key_id)
    return event


def _redact(logger: object, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return _REDACTOR(logger, method, event)


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def configure_logging(*, level: str = "INFO", json: bool = False, secrets: tuple[str, ...] = ()) -> None:
    """(Re)configures structlog and the root ``logging`` handler. ``secrets`` are masked wherever they appear."""
    global _REDACTOR
    _REDACTOR = Redactor(secrets)
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Any] = [add_request_context, structlog.processors.add_log_level, timestamper]
    _PROCESSORS[:] = [*shared, structlog.processors.format_exc_info, _redact, renderer]
    structlog.configure(
        processors=_PROCESSORS,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.WriteLoggerFactory(file=_SINK),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder(_EXTRA_FIELDS), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(_SINK)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _LIBRARY_LOGGERS:  # uvicorn's own handlers would print a second, differently formatted line
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
        library.setLevel(logging.NOTSET)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # our access log replaces it
    numeric = logging.getLevelNamesMapping()[level]
    for name, floor in _FLOOR.items():
        logging.getLogger(name).setLevel(max(floor, numeric))


def get_logger(name: str) -> Any:
    """A structlog logger whose lines carry ``logger=name``. Make them after ``configure_logging`` (in constructors,
    not at import time): the level is fixed when the logger is made."""
    return structlog.get_logger().bind(logger=name)


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line written meanwhile, rendered and redacted as in production, goes to the returned buffer."""
    buffer = io.StringIO()
    previous, _SINK.target = _SINK.target, buffer
    try:
        yield buffer
    finally:
        _SINK.target = previous
