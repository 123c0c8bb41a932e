"""The chaos client's second job in the cancel workload (``--workload cancel``, chaos_app ``comp``):
for every parent it sent, resolve its ``hold`` child's promise ``go`` (the child's id derives from
the parent's and the child key ``hold``), and cancel a random half of the parents at a random
moment: a quarter of those were sent with a 1 s delay and are cancelled 0-0.6 s after their ack
(before they start: answer ``cancelled``), the rest 0-3 s after it (running, suspended on a child,
or done: ``terminal``); 40 % of the cancelled get a second cancel 0.2-1.2 s after the first was
answered (often while compensating). Requests go through ``reliq.Client`` on the workers' path to
Valkey (the fault proxy when there is one) and are retried on errors until answered. Every
attempt is one line of cancels.jsonl.

Outcomes of one attempt: ``cancelled`` / ``cancelling`` / ``terminal`` (``Client.cancel``'s
answers), ``resumed`` / ``stored`` / ``settled`` / ``finished`` (a resolve's, ``finished``: the
child ended first, cancelled by the walk), ``unknown-id`` (a resolve before the parent linked the
child: retried until the parent is finished, then ``gone``), ``error`` (retried).
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Literal

import msgspec
from redis.exceptions import RedisError

from reliq import Client
from reliq.errors import InvocationFailed, PromiseAlreadySettled, UnknownInvocation
from reliq.store.record import TERMINAL

Outcome = Literal[
    "cancelled",
    "cancelling",
    "terminal",
    "resumed",
    "stored",
    "settled",
    "finished",
    "unknown-id",
    "gone",
    "error",
]
ANSWERED: frozenset[str] = frozenset(
    {"cancelled", "cancelling", "terminal", "resumed", "stored", "settled", "finished", "gone"}
)
DELAYED = "1s"  # the send delay of the parents cancelled before they start


class Act(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt to cancel a parent or to resolve its hold child's promise (``id``: the
    parent's); ``second``: the deliberate repeat of a cancel."""

    key: str
    id: str
    what: Literal["cancel", "resolve"]
    n: int
    t0: float
    t1: float
    outcome: Outcome
    second: bool = False
    detail: str = ""


def chosen(seed: int, i: int) -> Literal["before-start", "later", "no"]:
    """Which parents the client cancels, and when (fixed per seed and position: the client's
    body and its canceller agree without talking)."""
    r = random.Random(f"{seed}:cancel:{i}").random()
    return "before-start" if r < 0.125 else "later" if r < 0.5 else "no"


class Canceller:
    """``canceller.start(key, id)`` (the load's ``on_ack``) schedules one parent's acts."""

    def __init__(self, client: Client, service: str, path: Path, *, seed: int, give_up_at: float) -> None:
        self.client, self.service, self.path, self.give_up_at = client, service, path, give_up_at
        self.seed = seed
        self.rng = random.Random(f"{seed}:canceller")
        self.tasks: set[asyncio.Task[None]] = set()
        self.log: list[Act] = []

    def start(self, key: str, inv: str) -> None:
        i = int(key.rsplit("-", 1)[1])
        mode = chosen(self.seed, i)
        jobs = [self._resolve(key, inv, self.rng.uniform(0.3, 2.0))]
        if mode != "no":
            at = self.rng.uniform(0, 0.6) if mode == "before-start" else self.rng.uniform(0, 3.0)
            again = self.rng.uniform(0.2, 1.2) if self.rng.random() < 0.4 else None
            jobs.append(self._cancel(key, inv, at, again))
        for job in jobs:
            t = asyncio.create_task(job)
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def wait(self) -> None:
        """Until every scheduled act is done; then write cancels.jsonl."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks))
        enc = msgspec.json.Encoder()
        self.path.write_bytes(b"".join(enc.encode(a) + b"\n" for a in self.log))

    async def _cancel(self, key: str, inv: str, at: float, again: float | None) -> None:
        await asyncio.sleep(at)  # pacing: the moment of the cancel
        n = await self._until_answered(key, inv, "cancel", 0, False)
        if again is not None:
            await asyncio.sleep(again)
            await self._until_answered(key, inv, "cancel", n, True)

    async def _resolve(self, key: str, parent: str, at: float) -> None:
        await asyncio.sleep(at)
        await self._until_answered(key, parent, "resolve", 0, False)

    async def _until_answered(
        self, key: str, inv: str, what: Literal["cancel", "resolve"], n: int, second: bool
    ) -> int:
        pause = 0.05
        while True:
            outcome = await self._once(key, inv, what, n, second)
            n += 1
            if outcome in ANSWERED or time.monotonic() + pause > self.give_up_at:
                return n
            await asyncio.sleep(pause * (0.5 + self.rng.random()))
            pause = min(pause * 2, 1.0)

    async def _once(
        self, key: str, inv: str, what: Literal["cancel", "resolve"], n: int, second: bool
    ) -> Outcome:
        t0 = time.time()
        detail = ""
        outcome: Outcome
        try:
            async with asyncio.timeout(5):  # a blackholed connection must not hang the act
                outcome = await (self._cancel_once(inv) if what == "cancel" else self._resolve_once(inv, key))
        except PromiseAlreadySettled:
            outcome = "settled"
        except InvocationFailed as e:
            outcome, detail = "finished", e.state
        except UnknownInvocation:  # a parent the client was told exists: retried
            outcome = "unknown-id"
        except (RedisError, OSError, TimeoutError) as e:
            outcome, detail = "error", type(e).__name__
        self.log.append(
            Act(
                key=key,
                id=inv,
                what=what,
                n=n,
                t0=t0,
                t1=time.time(),
                outcome=outcome,
                second=second,
                detail=detail,
            )
        )
        return outcome

    async def _cancel_once(self, parent: str) -> Outcome:
        answer = await self.client.cancel(parent, who="chaos")
        return "unknown-id" if answer == "unknown" else answer

    async def _resolve_once(self, parent: str, key: str) -> Outcome:
        kid = await self.client.child_id_for(self.service, parent, "hold")
        try:
            woken = await self.client.resolve(kid, "go", key)
        except UnknownInvocation:  # not linked yet; once the parent is finished, it never will be
            return "gone" if await self.client.state(parent) in TERMINAL else "unknown-id"
        return "resumed" if woken == "resumed" else "stored"


def read_acts(path: Path) -> list[Act]:
    dec = msgspec.json.Decoder(Act)
    if not path.exists():
        return []
    return [dec.decode(line) for line in path.read_bytes().splitlines() if line.strip()]
