"""Many calls of one Lua script, sent as one: what the concurrent requests of one instance ask of Redis in the same
turn of the event loop goes out in a single ``EVALSHA``.

Every request asks Redis three or four things (its requests-per-minute check, its token admission, then the cost
and token settlement). With redis-py each command costs about 0.1 ms of this process's CPU, whatever it carries, so
a gateway serving hundreds of requests a second spent a third of its CPU packing and parsing them. Batched, each
call still gets exactly its own answer, in order, atomically per call; a batch only shares the round trip.

Each script's body runs unchanged inside a Lua function whose parameters are named ``KEYS`` and ``ARGV`` (they
shadow the globals), called once per batched call; one source holds every script of a client, so different
scripts share a batch too. A call never waits for a timer: the batch is sent on the next
turn of the loop, so a lone request pays a scheduling hop (microseconds) and a busy instance fills the batch.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

MAX_BATCH = 256  # calls per script run: long enough to amortise, short enough not to stall Redis

_FUNCTION = """
fns[{number}] = function(KEYS, ARGV)
{body}
end
"""
_DISPATCH = """
local out = {}
local calls = tonumber(ARGV[1])
local at, key_at = 2, 1
for c = 1, calls do
  local fn, key_count, arg_count = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  at = at + 3
  local keys, args = {}, {}
  for i = 1, key_count do keys[i] = KEYS[key_at + i - 1] end
  for i = 1, arg_count do args[i] = ARGV[at + i - 1] end
  key_at, at = key_at + key_count, at + arg_count
  out[c] = fns[fn](keys, args)
end
return out
"""

_Call = tuple[int, Sequence[str], Sequence[Any], "asyncio.Future[Any]"]
BatchedScript = Callable[[Sequence[str], Sequence[Any]], Awaitable[Any]]


def batched(bodies: Sequence[str]) -> str:
    """The Lua source running, per call of a batch, the body it names (1-based, in ``bodies`` order)."""
    functions = "".join(_FUNCTION.format(number=n, body=body) for n, body in enumerate(bodies, start=1))
    return "local fns = {}\n" + functions + _DISPATCH


class ScriptBatcher:
    """One client's Lua scripts, sent together: ``await batcher.script(BODY)(keys, args)`` is
    ``await redis.register_script(BODY)(keys=keys, args=args)``, sent in one ``EVALSHA`` with the calls of every
    script of this batcher made in the same turn of the loop (a request's token settlement and its spend)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._bodies: list[str] = []
        self._script: AsyncScript | None = None
        self._pending: list[_Call] = []
        self._scheduled = False
        self._running: set[asyncio.Task[None]] = set()

    def script(self, body: str) -> BatchedScript:
        """``body`` as a batched call (a body met again is the same script)."""
        if body not in self._bodies:
            self._bodies.append(body)
            self._script = self._redis.register_script(batched(self._bodies))
        return functools.partial(self._call, self._bodies.index(body) + 1)

    async def _call(self, number: int, keys: Sequence[str], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((number, keys, args, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        self._scheduled = False
        while self._pending:
            calls, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            task = asyncio.ensure_future(self._run(calls))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, calls: list[_Call]) -> None:
        assert self._script is not None
        keys: list[str] = []
        args: list[Any] = [len(calls)]
        for number, call_keys, call_args, _ in calls:
            keys.extend(call_keys)
            args += [number, len(call_keys), len(call_args), *call_args]
        try:
            replies = await self._script(keys=keys, args=args)
        except BaseException as exc:  # every caller of the batch sees the failure (translated by its adapter)
            for *_, future in calls:
                if not future.done():
                    if isinstance(exc, Exception):
                        future.set_exception(exc)
                    else:
                        future.cancel()
            if not isinstance(exc, Exception):
                raise
            return
        for (*_, future), reply in zip(calls, replies, strict=True):
            if not future.done():  # a caller cancelled meanwhile: its call ran, nobody waits for the answer
                future.set_result(reply)


_SHARED: weakref.WeakKeyDictionary[Redis, ScriptBatcher] = weakref.WeakKeyDictionary()


def shared_batcher(redis: Redis) -> ScriptBatcher:
    """The batcher of ``redis``: every adapter on one client shares its round trips."""
    batcher = _SHARED.get(redis)
    if batcher is None:
        batcher = _SHARED[redis] = ScriptBatcher(redis)
    return batcher
