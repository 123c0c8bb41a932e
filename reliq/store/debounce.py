"""The typed wrapper of ``lua/debounce.lua``: join or open the debounce window of one key, in one
script call in the slot of the key's partition (the key, the window's invocation and the delayed
set share its hash tag)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import msgspec
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from reliq.codec import text
from reliq.store.commands import RedisClient
from reliq.store.flow import flow_keys
from reliq.store.keys import ServiceKeys
from reliq.store.replies import Registration, _Status, as_state
from reliq.store.sources import source

Mode = Literal["debounce", "throttle"]
Joined = Literal["accepted", "debounced", "moved", "bad_key"]
_pack = msgspec.msgpack.Encoder().encode
_joined: _Status[Joined] = _Status(Joined)


class Outcome(NamedTuple):
    status: Joined
    id: str
    state: str


class DebounceScript:
    """``debounce.lua``, registered on one client."""

    NAMES = ("debounce",)

    def __init__(self, redis: RedisClient) -> None:
        self._s: AsyncScript = redis.register_script(source("debounce"))

    async def __call__(
        self, k: ServiceKeys, key: str, seen: str, reg: Registration, mode: Mode, pipe: Pipeline | None = None
    ) -> Outcome | None:
        """Join the window ``key`` names if it still names ``seen`` ('' none), else open one with
        ``reg`` (its ``delay_ms`` is the window). With ``pipe``, queued there (decode that
        pipeline's reply with ``outcome``) and None returned."""
        small = (
            reg.id,
            reg.fp,
            reg.handler,
            "",
            "",
            str(reg.delay_ms),
            "",
            reg.trace,
            reg.reply,
            "",
            reg.prio,
            reg.flow_key,  # a callable concurrency key's value ('' none: lib/flow.lua fl_key)
        )
        keys = [
            k.streams[0],
            k.delayed,
            key,
            k.inv(seen or reg.id),
            k.inv(reg.id),
            *k.streams[1:],
            *flow_keys(k),
        ]
        args: list[str | bytes] = [k.service, _pack(small), reg.payload, seen, mode]
        if pipe is not None:
            await self._s(keys=keys, args=args, client=pipe)
            return None
        return outcome(await self._s(keys=keys, args=args))


def outcome(reply: Sequence[Any]) -> Outcome:
    """debounce.lua's reply: (status, invocation id, state; '' when moved or bad_key)."""
    joined = _joined(reply[0])
    return Outcome(joined, text(reply[1]), "" if joined in ("moved", "bad_key") else as_state(reply[2]))
