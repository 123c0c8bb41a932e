"""A user's ``Client`` after each kind of fault heals (docs/reliability.md, finding 12): 300
callers share one Client, each calling cancel, child id + resolve or state in a loop (5 s per call,
as the chaos client does), through the fault proxy to a real Valkey. A fault lasts 3 s: a black
hole, replies dropped, the server SIGSTOPped, the server SIGKILLed and restarted. After it heals,
every caller must be answered again, and no call started 4 s after the heal may fail (a
loaded CI machine needs a few seconds to reconnect 300 callers; before the gate, calls kept
timing out for a minute)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path
from typing import Literal

import pytest
from redis.exceptions import RedisError

from load_tests.chaos_proxy import FaultProxy
from load_tests.client_recovery import inject
from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey
from reliq.errors import ReliqError

from ..conftest import wait_until

CALLERS = 300
Fault = Literal["blackhole", "drop", "pause", "kill"]


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["blackhole", "drop", "pause", "kill"])
async def test_every_caller_of_a_shared_client_is_answered_again_once_a_fault_heals(
    kind: Fault, tmp_path: Path
) -> None:
    server = EmbeddedValkey(data_dir=tmp_path).start()
    try:
        async with FaultProxy(server.port) as proxy, Client(proxy.url) as c:
            ids = [(await c.send("recover", "job", i, key=f"k{i}")).id for i in range(30)]
            loop = asyncio.get_running_loop()
            healed = float("inf")
            answered = [0] * CALLERS  # calls answered since the heal, per caller
            served = [0]  # calls answered before the fault
            late_failures: list[str] = []  # calls started 4 s after the heal that failed
            stop = asyncio.Event()

            async def call(rng: random.Random) -> None:
                inv, r = rng.choice(ids), rng.random()
                if r < 0.4:
                    await c.cancel(inv, who="test")
                elif r < 0.8:
                    kid = await c.child_id_for("recover", inv, "hold")
                    with contextlib.suppress(ReliqError):  # an answer: the child was never linked
                        await c.resolve(kid, "go", 1)
                else:
                    await c.state(inv)

            async def caller(i: int) -> None:
                rng = random.Random(i)
                while not stop.is_set():
                    t0 = loop.time()
                    try:
                        async with asyncio.timeout(5):
                            await call(rng)
                        if t0 >= healed:
                            answered[i] += 1
                        else:
                            served[0] += 1
                    except (RedisError, OSError, TimeoutError) as e:
                        if t0 >= healed + 4:
                            late_failures.append(f"caller {i} +{t0 - healed:.1f}s: {type(e).__name__} {e}")
                        await asyncio.sleep(0.05 + rng.random() * 0.2)

            callers = [asyncio.create_task(caller(i)) for i in range(CALLERS)]
            try:
                await wait_until(lambda: served[0] >= 2 * CALLERS, what="calls under load before the fault")
                await inject(kind, 3, server, proxy)
                healed = loop.time()
                await wait_until(
                    lambda: min(answered) >= 3 and loop.time() > healed + 6,
                    timeout=30,
                    what=f"every caller answered 3 times after the {kind} healed",
                )
            finally:
                stop.set()
                await asyncio.gather(*callers, return_exceptions=True)
            assert late_failures == [], late_failures[:5]
    finally:
        server.stop()
