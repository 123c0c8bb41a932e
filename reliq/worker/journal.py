"""The journal of one invocation as its handler replays it: step results, child ids by call order,
and the inbox (what it awaited and got: child outcomes, promises, timers; ``lua/lib/wake.lua``).

Three keys in the invocation's slot, read once per attempt (not at all on a first delivery:
nothing can be journaled yet, but a promise resolved early is read when it is awaited). Positions
(the call order of children, the number of a timer) are handed out when an operation starts,
before it awaits anything, so concurrent operations (``asyncio.gather``) get the same positions on
every replay.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from reliq import codec
from reliq.backoff import Backoff, retrying
from reliq.errors import LeaseLost, Nondeterminism, child_outcome
from reliq.store.keys import ServiceKeys, locate
from reliq.worker.waits import Item, Waits

if TYPE_CHECKING:
    from reliq.client import Client


MAX_TIMER = 100 * 365 * 86400.0  # seconds: a longer sleep or deadline is clamped to a century
JOURNAL_PATIENCE = 30.0  # seconds a journal read or write waits out a Redis outage
T = TypeVar("T")


class Journal:
    def __init__(
        self, client: Client, keys: ServiceKeys, invocation_id: str, epoch: int, *, fresh: bool
    ) -> None:
        self.client = client
        self.keys = keys
        self.id = invocation_id
        self.epoch = epoch
        self.steps: dict[str, bytes] = {}
        self.inbox: dict[str, bytes] = {}
        self.children: dict[int, str] = {}  # call order -> child id
        self.order = 0  # children handed out
        self.timers = 0  # timers handed out (sleeps and deadlines)
        self._loading: asyncio.Future[None] | None = None
        if fresh:  # first delivery ever: nothing journaled yet, skip the read
            self._loading = asyncio.get_running_loop().create_future()
            self._loading.set_result(None)
        self._offset_known = False

    async def load(self) -> None:
        """Read the journal once (concurrent callers share the one read)."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._read())
        await asyncio.shield(self._loading)

    async def _patiently(self, op: Callable[[], Awaitable[T]], what: str) -> T:
        """``op`` (a read, or a fenced write that recognises its re-send), waiting out a Redis
        outage for up to ``JOURNAL_PATIENCE`` s instead of failing the attempt over it."""
        return await retrying(
            op, what=f"{what} of {self.id}", deadline=JOURNAL_PATIENCE, backoff=Backoff(first=0.05, cap=2.0)
        )

    async def _read(self) -> None:
        k = self.keys

        async def read() -> list[Any]:
            async with self.client.redis.pipeline(transaction=False) as p:
                p.hgetall(k.steps(self.id))
                p.hgetall(k.inbox(self.id))
                p.zrange(k.children(self.id), 0, -1, withscores=True)
                return await p.execute()

        steps, inbox, children = await self._patiently(read, "reading the journal")
        self.steps = {key.decode(): v for key, v in steps.items()}
        self.inbox = {key.decode(): v for key, v in inbox.items()}
        self.children = {int(score): codec.text(cid) for cid, score in children}

    async def step(self, name: str, encoded: bytes) -> bool:
        """Journal a step whose function already ran, waiting out a Redis outage (up to
        ``JOURNAL_PATIENCE`` s, backoff to 2 s) instead of failing the attempt and running the
        effect again. Safe to keep trying: the step script is epoch-fenced and ``HSETNX``, so a
        write that lands after this lease was lost is refused (``LeaseLost``), never applied."""
        return await self._patiently(
            lambda: self.client.scripts.step(self.keys, self.id, self.epoch, name, encoded),
            f"journal of step {name!r}",
        )

    def child_at(self, order: int, cid: str, handler: str, parent: str, fp: str = "") -> str:
        """The child id at ``order`` on this run: the journaled one when it differs from ``cid``
        only by partition (routed by a flow key since: a spec published meanwhile), else ``cid``;
        ``Nondeterminism`` when the journal holds another child, handler or payload (``fp``,
        absent in journals of older versions) there."""
        journaled = self.children.get(order)
        if journaled is not None and journaled != cid and locate(journaled)[2] == locate(cid)[2]:
            cid = journaled
        was = self.inbox.get(f"n:{order}")
        if journaled is not None and (journaled != cid or (was is not None and was.decode() != handler)):
            raise Nondeterminism(
                f"call #{order} of {parent} was {journaled} ({was!r}), the replay asks for {cid} ({handler})"
            )
        sent = self.inbox.get(f"f:{order}")
        if journaled is not None and fp and sent is not None and sent.decode() != fp:
            raise Nondeterminism(f"call #{order} of {parent} sends {cid} another payload than the first run")
        return cid

    def next_order(self) -> int:
        self.order += 1
        return self.order

    def next_timer(self) -> int:
        self.timers += 1
        return self.timers

    async def inbox_value(self, field: str) -> bytes | None:
        """A field of the inbox: journaled, or read now (a promise may be resolved any time)."""
        value = self.inbox.get(field)
        if value is None:
            key = self.keys.inbox(self.id)
            value = await self._patiently(lambda: self.client.redis.hget(key, field), "reading the inbox")
            if value is not None:
                self.inbox[field] = value
        return value

    async def note(self, waits: Waits, field: str, value: str | int) -> bytes:
        """Journal a value of this attempt in the inbox (first value stands; fenced)."""
        waits.touched = True
        stored, now = await self._patiently(
            lambda: self.client.scripts.note(self.keys, self.id, self.epoch, field, value),
            "journaling " + field,
        )
        if not now:
            raise LeaseLost(self.id)
        waits.offset_ms = now - int(time.time() * 1000)
        self._offset_known = True
        self.inbox[field] = stored.encode()
        return stored.encode()

    async def due(self, waits: Waits, n: int, seconds: float) -> int:
        """Timer ``n``'s due time (server ms): journaled at its first run, the same ever after."""
        journaled = self.inbox.get(f"d:{n}")
        if journaled is None:
            if math.isnan(seconds):
                raise ValueError("a durable timer's duration is a number of seconds, not NaN")
            ms = int(max(0.0, min(seconds, MAX_TIMER)) * 1000)  # inf: as good as never
            return int(await self.note(waits, f"d:{n}", ms))
        await self.server_offset(waits)
        return int(journaled)

    async def server_offset(self, waits: Waits) -> None:
        if not self._offset_known:
            server_ms = await self._patiently(self.client.server_time_ms, "reading the server's clock")
            waits.offset_ms = server_ms - int(time.time() * 1000)
            self._offset_known = True

    async def race(
        self, waits: Waits, item: Item, n: int, timeout: float, on_wait: Callable[[str], Awaitable[None]]
    ) -> tuple[bool, bytes]:
        """``item`` against the durable deadline ``n``: (True, the item's value), or (False, b'')
        when the deadline won. Which one won is journaled (``x:<n>``) when the deadline wins, so
        every replay takes the same branch. ``on_wait(item.field)`` is awaited before waiting (a
        compensating run raises ``Cancelled`` there)."""
        marker = self.inbox.get(f"x:{n}")
        if marker is None:
            value = self.inbox.get(item.field) if item.child else await self.inbox_value(item.field)
            if value is not None:
                return True, value
            due = await self.due(waits, n, timeout)
            if f"t:{n}" not in self.inbox and waits.server_ms() < due:
                await on_wait(item.field)
                item.alone = True
                winner, value = await waits.first([item, Item(f"t:{n}", alone=True, due=due)])
                if winner is item:
                    if item.child is not None and item.field not in self.inbox:
                        # a success read from the child's record: journaled before the handler
                        # acts on it, or a replay before the relay delivers it would see the
                        # deadline passed and take the timeout branch (failures are journaled
                        # by the probe already)
                        value = await waits.journal(item.field, value)
                        self.inbox[item.field] = value
                    return True, value
            marker = await self.note(waits, f"x:{n}", "t")
        if marker == b"t":
            return False, b""
        return True, self.inbox.get(item.field, b"")


def child_value(child_id: str, value: bytes) -> Any:
    """A child's journaled outcome: its result, or the exception its failure raises."""
    kind, body = value[:1], value[1:]
    if kind == b"S":
        return codec.decode(body)
    error = codec.decode(body) if body else None
    state = "cancelled" if kind == b"C" else "failed"
    raise child_outcome(child_id, state, error if isinstance(error, dict) else None)
