"""The chaos client's second job in the tree workload: resolve the promise ``approve`` of every
parent it sent, with ``reliq.Client.resolve`` through the same connection path as the workers
(the fault proxy when there is one). Each parent's resolve is retried on errors until it is
answered; then, 0-2 s later, it is resolved a second time on purpose, which must be refused
(``PromiseAlreadySettled``: the first value stands), also when the parent has finished
meanwhile. Every attempt is one line of promises.jsonl.

Outcomes of one attempt: ``resumed`` / ``stored`` (accepted), ``settled`` (refused: a value was
there; fine for a retry whose earlier attempt landed unseen, and what the second resolve must
get), ``finished`` (refused: the invocation had already finished), ``unknown-id`` and ``error``
(Redis unreachable, timed out: retried).
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

from .chaos_app import PROMISE, promise_value

Outcome = Literal["resumed", "stored", "settled", "finished", "unknown-id", "error"]
ANSWERED: frozenset[str] = frozenset({"resumed", "stored", "settled", "finished"})


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    """One resolve attempt; ``second``: the deliberate repeat after the first was answered."""

    key: str
    id: str
    n: int
    t0: float
    t1: float
    outcome: Outcome
    second: bool = False
    detail: str = ""


class Resolver:
    """``resolver.start(key, id)`` (the load's ``on_ack``) schedules the resolves of one parent,
    0.2-1.5 s after its ack (so most parents are suspended on the promise by then)."""

    def __init__(self, client: Client, path: Path, *, seed: int, give_up_at: float) -> None:
        self.client, self.path, self.give_up_at = client, path, give_up_at
        self.rng = random.Random(f"{seed}:promises")
        self.tasks: set[asyncio.Task[None]] = set()
        self.log: list[Resolution] = []

    def start(self, key: str, inv: str) -> None:
        t = asyncio.create_task(self._resolve(key, inv, self.rng.uniform(0.2, 1.5)))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def wait(self) -> None:
        """Until every scheduled resolve is done; then write promises.jsonl."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks))
        enc = msgspec.json.Encoder()
        self.path.write_bytes(b"".join(enc.encode(r) + b"\n" for r in self.log))

    async def _resolve(self, key: str, inv: str, delay: float) -> None:
        await asyncio.sleep(delay)  # pacing: let the parent reach its await first, mostly
        n = 0
        for second in (False, True):
            if second:  # now or later: the parent may have finished by then (still refused as settled)
                await asyncio.sleep(self.rng.uniform(0, 2))
            pause = 0.05
            while True:
                outcome = await self._once(key, inv, n, second)
                n += 1
                if outcome in ANSWERED or time.monotonic() + pause > self.give_up_at:
                    break
                await asyncio.sleep(pause * (0.5 + self.rng.random()))
                pause = min(pause * 2, 1.0)

    async def _once(self, key: str, inv: str, n: int, second: bool) -> Outcome:
        t0 = time.time()
        detail = ""
        outcome: Outcome
        try:
            async with asyncio.timeout(5):  # a blackholed connection must not hang the resolve
                woken = await self.client.resolve(inv, PROMISE, promise_value(key))
            outcome = "resumed" if woken == "resumed" else "stored"
        except PromiseAlreadySettled:
            outcome = "settled"
        except InvocationFailed as e:
            outcome, detail = "finished", e.state
        except UnknownInvocation:
            outcome = "unknown-id"
        except (RedisError, OSError, TimeoutError) as e:
            outcome, detail = "error", type(e).__name__
        self.log.append(
            Resolution(
                key=key, id=inv, n=n, t0=t0, t1=time.time(), outcome=outcome, second=second, detail=detail
            )
        )
        return outcome


def read_resolutions(path: Path) -> list[Resolution]:
    dec = msgspec.json.Decoder(Resolution)
    if not path.exists():
        return []
    return [dec.decode(line) for line in path.read_bytes().splitlines() if line.strip()]
