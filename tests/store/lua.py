"""Calling one Lua script as loaded (its libraries prepended) by its KEYS/ARGV contract, and a
claimed invocation to call the lease scripts on. The script tests go through the scripts
themselves, not the typed wrappers in reliq/store/scripts.py: what they pin is the contract
written in each script's header."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.exceptions import ResponseError

from reliq import Client
from reliq.store.keys import GROUP, ServiceKeys
from reliq.store.sources import source as _source


async def run(c: Client, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    return await c.redis.register_script(_source(name))(keys=list(keys), args=list(args))


def text(reply: Any) -> Any:
    """A script reply with bytes as str (lists element-wise)."""
    if isinstance(reply, list):
        return [text(x) for x in reply]
    return reply.decode() if isinstance(reply, bytes) else reply


class Held(NamedTuple):
    """An invocation claimed by ``consumer`` (claim.lua): what the lease scripts are called with."""

    id: str
    entry: str
    epoch: int


async def claimed(c: Client, k: ServiceKeys, consumer: str = "w1", payload: Any = None) -> Held:
    with contextlib.suppress(ResponseError):  # BUSYGROUP: the group exists
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
    acc = await c.send(k.service, "h", payload)
    [[_, entries]] = await c.redis.xreadgroup(GROUP, consumer, {k.stream: ">"}, count=1)
    eid = entries[0][0].decode()
    out = text(await run(c, "claim", [k.stream, k.inv(acc.id)], [GROUP, consumer, 30000, "tok-" + eid, eid]))
    assert out[0] == "run", out
    return Held(acc.id, eid, int(out[1]))


async def settle(c: Client, k: ServiceKeys, held: Held) -> None:
    """Finish a test's invocation (complete.lua), so its keys get their retention TTL."""
    keys = [k.stream, k.minutes, k.done_channel, k.outbox, *k.per_invocation(held.id)]
    await run(c, "complete", keys, [GROUP, 60000, held.entry, held.epoch, "succeeded", "null", "j"])
