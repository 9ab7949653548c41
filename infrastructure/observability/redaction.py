"""Keeps credentials out of logs: by field name, by shape, and by the exact values of the secrets this process holds.

Three nets, because each misses something the others catch:
- a field whose name says it is secret (``password``, ``authorization``, ``api_key``, ...) is replaced whole;
- any string that looks like a credential (a bearer token, a JWT, an ``sk-...`` key, a password in a URL) is masked
  where it appears, also inside messages and tracebacks of libraries we do not control;
- the literal values the process was configured with (the JWT secret, provider keys, the database password, the
  metrics token) are masked wherever they appear, whatever their shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "passwd",
        "new_password",
        "secret",
        "client_secret",
        "jwt_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "api_key",
        "apikey",
        "x-api-key",
        "key_plaintext",
        "credentials",
        "credential",
    }
)
_SHAPES = [
    r"(?i:\bbearer\s+)[A-Za-z0-9._~+/=-]+",  # an Authorization header's value
    r"(?i:\bbasic\s+)[A-Za-z0-9+/=]{8,}",
    r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",  # a JWT
    r"\bsk-[A-Za-z0-9][A-Za-z0-9_-]{14,}",  # sk-sb-… (ours), sk-…, sk-proj-…, sk-ant-… (providers')
    r"(?<=://)[^/\s:@]+:[^/@\n]+(?=@)",  # user:password@ in a URL (a password may hold spaces)
    # password=…, "token": "…", api_key: … inside free text (an exception message, a library's debug line)
    r"(?i:\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\b[\"']?\s*[=:]\s*[\"']?)[^\s\"',;&]+",
    # PostgreSQL quotes the values of a violated constraint in its DETAIL (the engine hides statement parameters,
    # the server's message still holds them): "Key (email)=(ada@example.com) already exists", "Failing row contains"
    r"(?<=\)=\()[^\n]*(?=\) (?:already exists|is not present|is still referenced|conflicts with))",
    r"(?<=Failing row contains \()[^\n]*(?=\))",
]
# Every shape above contains one of these, lower-cased.
_TRIGGERS = ("bearer", "basic", "eyj", "sk-", "://", "pass", "pwd", "secret", "token", "key", "failing row")
_MIN_LITERAL = 6  # shorter "secrets" would mask ordinary words
LEADING_KEYS = ("timestamp", "level", "event", "logger")
# Fields whose values the service itself produces in a fixed format (times, levels, templates, ids, numbers): not
# scanned, which keeps the access log line cheap. Nothing else may be logged under these names.
TRUSTED_KEYS = frozenset(
    {"timestamp", "level", "logger", "route", "method", "status", "duration_ms", "client", "user_id", "api_key_id"}
)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals = sorted({s for s in secrets if s and len(s) >= _MIN_LITERAL}, key=len, reverse=True)
        patterns = [re.escape(s) for s in literals] + _SHAPES
        self._pattern = re.compile("|".join(patterns))
        # Cheap substring checks first: the full pattern runs only on text that holds one of these.
        self._triggers = tuple(dict.fromkeys([*_TRIGGERS, *(s[:_MIN_LITERAL].lower() for s in literals)]))

    def text(self, value: str) -> str:
        if len(value) < _MIN_LITERAL:
            return value
        lowered = value.lower()
        for trigger in self._triggers:
            if trigger in lowered:
                return self._pattern.sub(MASK, value)
        return value

    def value(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if depth > 4:
            return value
        if isinstance(value, Mapping):
            return self.mapping(value, depth + 1)
        if isinstance(value, list | tuple):
            return [self.value(item, depth + 1) for item in value]
        return value

    def mapping(self, values: Mapping[Any, Any], depth: int = 0) -> dict[Any, Any]:
        return {
            key: MASK if isinstance(key, str) and key.lower() in SENSITIVE_KEYS else self.value(item, depth)
            for key, item in values.items()
        }

    def __call__(self, _logger: object, _method: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """As a structlog processor: the whole event dictionary (rendered exceptions included), in one pass that also
        puts the fields a reader looks for first at the front of the line."""
        redacted = {key: event[key] for key in LEADING_KEYS if key in event}
        if "event" in redacted:
            redacted["event"] = self.value(redacted["event"])
        for key, item in event.items():
            if key in redacted:
                continue
            if key in TRUSTED_KEYS:
                redacted[key] = item
            elif isinstance(key, str) and key.lower() in SENSITIVE_KEYS:
                redacted[key] = MASK
            else:
                redacted[key] = self.value(item)
        return redacted
