"""Log-in throttling in Redis, shared by every instance: the fixed windows of the in-memory throttle, one counter
key per account and per client address.

Each counter is an integer key that expires one window after the failure that created it, so Redis forgets idle
counters by itself. Checking and counting are Lua scripts: the check reads every counter of an attempt at one
instant, and a count cannot be lost between its increment and its expiry. Time is Redis's own (the keys' TTLs), so
instances with skewed clocks still agree on when a window ends.

Keys hold an HMAC-SHA-256 of the account and of the address under a server secret, never the email or the address
itself, nor a plain digest of them (anyone reading Redis could hash a guessed email and look for it):
``<prefix>login:account:<hmac>`` and ``<prefix>login:address:<hmac>``. As with the rate limiter, the keys of one
attempt must live on one server (a single Redis, or one Cluster slot via a hash tag in the key prefix).
"""

from __future__ import annotations

import hashlib
import hmac

from redis.asyncio import Redis

from domain.auth.ports import LoginAttempt, LoginThrottle
from infrastructure.redis.client import translated_errors

# KEYS: the attempt's counters. ARGV: the limit of each, then the window in ms.
# Returns the longest wait in ms among the counters at their limit: 0 or less when none is.
RETRY_AFTER = """
local window = tonumber(ARGV[#ARGV])
local wait = -1
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', key)
    if ttl == -1 then ttl = window end
    if ttl > wait then wait = ttl end
  end
end
return wait
"""

# KEYS: the attempt's counters. ARGV[1]: the window in ms. The first failure opens the window; later ones do not
# extend it (a counter found without an expiry gets one).
RECORD_FAILURE = """
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 or redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
  end
end
return 1
"""


KEY_LABEL = b"switchboard-login-throttle\x00"


def keyed_digest(secret: str, kind: str, value: str) -> str:
    """The HMAC-SHA-256 naming one counter; ``kind`` (account or address) is bound in, so the two never collide."""
    message = KEY_LABEL + kind.encode() + b"\x00" + value.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class RedisLoginThrottle(LoginThrottle):
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        secret: str,
        max_per_account: int,
        max_per_address: int,
        window_seconds: float,
    ) -> None:
        self._redis = redis
        self._secret = secret
        self._prefix = prefix
        self._limits = {"account": max_per_account, "address": max_per_address}
        self._window_ms = max(1, round(window_seconds * 1000))
        self._retry_after = redis.register_script(RETRY_AFTER)
        self._record_failure = redis.register_script(RECORD_FAILURE)

    def _key(self, kind: str, value: str) -> str:
        return f"{self._prefix}login:{kind}:{keyed_digest(self._secret, kind, value)}"

    def _counters(self, attempt: LoginAttempt) -> list[tuple[str, int]]:
        counters = [(self._key("account", attempt.account), self._limits["account"])]
        if attempt.client_address:
            counters.append((self._key("address", attempt.client_address), self._limits["address"]))
        return counters

    async def retry_after(self, attempt: LoginAttempt) -> float | None:
        counters = self._counters(attempt)
        keys = [key for key, _ in counters]
        args = [limit for _, limit in counters] + [self._window_ms]
        async with translated_errors("login throttle"):
            wait_ms = int(await self._retry_after(keys=keys, args=args))
        return wait_ms / 1000 if wait_ms > 0 else None

    async def record_failure(self, attempt: LoginAttempt) -> None:
        keys = [key for key, _ in self._counters(attempt)]
        async with translated_errors("login throttle"):
            await self._record_failure(keys=keys, args=[self._window_ms])

    async def record_success(self, attempt: LoginAttempt) -> None:
        async with translated_errors("login throttle"):
            await self._redis.delete(self._key("account", attempt.account))
