"""Many callers of one ``Client`` through a fault, and after it heals (docs/reliability.md, finding
12). ``--callers`` loops share one Client to a fresh embedded Valkey behind the fault proxy; each
calls cancel (40 %), child id + resolve (40 %) or state (20 %) of one of 200 queued invocations,
with a 5 s timeout per call as the chaos client has, pausing 50-550 ms after an error. After 5 s
of load, one fault of ``--fault-seconds``; then ``--after`` seconds of load. Prints answered and
timed-out calls per second around the heal and the errors by kind.

    PYTHONPATH=$PWD python -m load_tests.client_recovery --fault none
    PYTHONPATH=$PWD python -m load_tests.client_recovery --fault blackhole
    PYTHONPATH=$PWD python -m load_tests.client_recovery --fault none --plain   # redis-py's own pool

``--plain``: the Client on redis-py's ``BlockingConnectionPool`` without reliq's gate (the
behaviour before the fix, for comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import random
import signal
import tempfile
import time

import uvloop
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from load_tests.chaos_proxy import FaultProxy
from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey
from reliq.errors import ReliqError


async def inject(kind: str, seconds: float, server: EmbeddedValkey, proxy: FaultProxy) -> None:
    """One fault of ``seconds``, then healed (a restarted server is ready when this returns)."""
    assert server.proc is not None
    if kind in ("blackhole", "drop"):
        proxy.set_mode("blackhole" if kind == "blackhole" else "drop")
        await asyncio.sleep(seconds)
        proxy.set_mode("pass")
    elif kind == "pause":
        server.proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(seconds)
        server.proc.send_signal(signal.SIGCONT)
    elif kind == "kill":
        server.kill()
        await asyncio.sleep(seconds)
        await asyncio.to_thread(server.start)
    else:
        await asyncio.sleep(seconds)


async def run(args: argparse.Namespace) -> None:
    server = EmbeddedValkey(data_dir=tempfile.mkdtemp(prefix="reliq-recovery-")).start()
    ok: collections.Counter[int] = collections.Counter()
    failed: collections.Counter[int] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    stop = asyncio.Event()
    try:
        async with FaultProxy(server.port) as proxy:
            plain = Redis.from_pool(BlockingConnectionPool.from_url(proxy.url, max_connections=256))
            c = Client(redis=plain) if args.plain else Client(proxy.url)
            ids = [(await c.send("svc", "h", i, key=f"k{i}")).id for i in range(200)]

            async def caller(j: int) -> None:
                rng = random.Random(j)
                while not stop.is_set():
                    inv, r = rng.choice(ids), rng.random()
                    op = "cancel" if r < 0.4 else "resolve" if r < 0.8 else "state"
                    try:
                        async with asyncio.timeout(5):
                            if op == "cancel":
                                await c.cancel(inv, who="bench")
                            elif op == "resolve":
                                kid = await c.child_id_for("svc", inv, "hold")
                                with contextlib.suppress(ReliqError):
                                    await c.resolve(kid, "go", 1)
                            else:
                                await c.state(inv)
                        ok[int(time.monotonic())] += 1
                    except (RedisError, OSError, TimeoutError) as e:
                        failed[int(time.monotonic())] += 1
                        kinds[f"{type(e).__name__} in {op}"] += 1
                        await asyncio.sleep(0.05 + rng.random() * 0.5)

            tasks = [asyncio.create_task(caller(j)) for j in range(args.callers)]
            await asyncio.sleep(5)
            start = time.monotonic()
            await inject(args.fault, args.fault_seconds, server, proxy)
            healed = time.monotonic()
            await asyncio.sleep(args.after)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await c.close()
            await plain.aclose()
    finally:
        server.stop()
    print(f"{args.fault} for {healed - start:.1f} s, {args.callers} callers, plain pool: {args.plain}")
    for s in range(int(start) - 3, int(healed + args.after)):
        print(f"{s - int(healed):+4d} s  answered {ok[s]:6d}  failed {failed[s]:5d}")
    late = sum(n for s, n in failed.items() if s >= healed + 2)
    rate = sum(n for s, n in ok.items() if healed + 2 <= s < healed + args.after - 1) / (args.after - 3)
    print(f"from 2 s after the heal: {late} failed, {rate:,.0f} answered/s; errors by kind: {dict(kinds)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fault", choices=["none", "blackhole", "drop", "pause", "kill"], default="blackhole")
    p.add_argument("--callers", type=int, default=1500)
    p.add_argument("--fault-seconds", type=float, default=8.0)
    p.add_argument("--after", type=float, default=40.0)
    p.add_argument("--plain", action="store_true", help="redis-py's own pool, without reliq's gate")
    uvloop.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
