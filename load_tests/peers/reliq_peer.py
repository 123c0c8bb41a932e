"""reliq: ``Client.send`` to enqueue; the worker is ``python -m reliq worker
load_tests.peers.reliq_peer:bench`` (started by the harness, like load_tests/drain.py), with every
guarantee on (claim with lease epoch, epoch-checked completion, result kept)."""

from __future__ import annotations

from reliq import Client, Context, Service

from .common import URL, run, tick, timed

bench = Service("bench")


@bench.handler
async def noop(ctx: Context) -> None:
    tick()


@bench.handler
async def blob(ctx: Context, data: str) -> None:
    tick()


def enqueue(n: int, payload: int, concurrency: int) -> float:
    async def go() -> float:
        async with Client(URL) as c:
            if payload:
                data = "x" * max(0, payload - 2)  # a JSON string of `payload` bytes
                return await timed(n, concurrency, lambda: c.send("bench", "blob", data))
            return await timed(n, concurrency, lambda: c.send("bench", "noop"))

    result: float = run(go())
    return result


def work() -> None:
    raise SystemExit("start reliq's worker with: python -m reliq worker load_tests.peers.reliq_peer:bench")
