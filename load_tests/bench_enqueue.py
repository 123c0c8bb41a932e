"""Enqueue rate through the Client against raw redis-py XADD loops (issue 16), in the same run:

- ``send``: one awaited ``Client.send`` at a time;
- ``send_many/B``: ``Client.send_many`` with B payloads per call (B = 100, 500: one script call);
- ``xadd-pipe/B``: a raw redis-py pipeline of B ``XADD``s per round trip (a plain
  ``redis.asyncio.Redis``, not reliq's connection), what an enqueue loop by hand would do;
- ``xadd``: a bare awaited ``XADD`` loop.

Each invocation is a no-op (``bench.noop``, payload ``null``; nothing drains it). One embedded
Valkey (AOF, ``appendfsync always``); every measurement starts from an empty server (FLUSHALL)
and the modes alternate round by round (the machine may be shared: compare within a round).

    .venv/bin/python -m load_tests.bench_enqueue --n 20000 --rounds 3

Prints, per round, each rate and the ratios send_many/B : xadd-pipe/B, with the client's and the
server's CPU per item; then the medians. Writes load_tests/results/enqueue-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aredis
import uvloop

from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey
from reliq.store.keys import new_id

RESULTS = Path(__file__).resolve().parent / "results"
SERVICE, HANDLER = "bench", "noop"
Run = Callable[[int], Awaitable[None]]


def modes(c: Client, raw: aredis.Redis, batches: list[int]) -> dict[str, Run]:
    stream = "raw:stream"

    async def send(n: int) -> None:
        for _ in range(n):
            await c.send(SERVICE, HANDLER)

    async def xadd(n: int) -> None:
        for _ in range(n):
            await raw.xadd(stream, {"i": new_id(SERVICE)})

    def send_many(b: int) -> Run:
        async def run(n: int) -> None:
            for start in range(0, n, b):
                await c.send_many(SERVICE, HANDLER, [None] * min(b, n - start))

        return run

    def pipe(b: int) -> Run:
        async def run(n: int) -> None:
            for start in range(0, n, b):
                async with raw.pipeline(transaction=False) as p:
                    for _ in range(min(b, n - start)):
                        p.xadd(stream, {"i": new_id(SERVICE)})
                    await p.execute()

        return run

    out: dict[str, Run] = {"send": send, "xadd": xadd}
    for b in batches:
        out[f"send_many/{b}"] = send_many(b)
        out[f"xadd-pipe/{b}"] = pipe(b)
    return out


async def server_cpu(c: Client) -> float:
    info = await c.redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(c: Client, run: Run, n: int) -> dict[str, float]:
    await c.redis.execute_command("FLUSHALL")
    s0, c0, t0 = await server_cpu(c), time.process_time(), time.perf_counter()
    await run(n)
    wall, client = time.perf_counter() - t0, time.process_time() - c0
    server = await server_cpu(c) - s0
    return {"rate": n / wall, "client_us": client / n * 1e6, "server_us": server / n * 1e6}


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="invocations per measurement")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batches", default="100,500", help="batch sizes of send_many and the pipeline")
    a = p.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    rounds: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedValkey(data_dir=tmp) as server:
        raw = aredis.Redis.from_url(server.url)
        async with Client(server.url) as c:
            table = modes(c, raw, batches)
            await c.send_many(SERVICE, HANDLER, [None] * 1000)  # warm: scripts loaded, layout cached
            await table[f"xadd-pipe/{batches[0]}"](1000)
            for r in range(a.rounds):
                names = list(table) if r % 2 == 0 else list(reversed(table))  # alternate the order
                got = {m: await measure(c, table[m], a.n) for m in names}
                rounds.append(got)
                cells = [f"{m} {got[m]['rate']:,.0f}/s" for m in table]
                ratios = [
                    f"{b}: {got[f'send_many/{b}']['rate'] / got[f'xadd-pipe/{b}']['rate']:.2f}"
                    for b in batches
                ]
                print(f"round {r + 1}: " + ", ".join(cells) + "; send_many/xadd-pipe " + ", ".join(ratios))
        await raw.aclose()
    print(f"\nN = {a.n}, {a.rounds} rounds, medians (rate; client / server CPU per item):")
    for m in rounds[0]:
        rate = statistics.median(x[m]["rate"] for x in rounds)
        cpu = [statistics.median(x[m][k] for x in rounds) for k in ("client_us", "server_us")]
        print(f"  {m:14s} {rate:9,.0f}/s   {cpu[0]:5.1f} / {cpu[1]:5.1f} us")
    for b in batches:
        each = [x[f"send_many/{b}"]["rate"] / x[f"xadd-pipe/{b}"]["rate"] for x in rounds]
        listed = ", ".join(f"{e:.2f}" for e in each)
        print(f"  send_many/{b} : xadd-pipe/{b} = {statistics.median(each):.2f} (rounds: {listed})")
    send = [x["send"]["rate"] / x["xadd"]["rate"] for x in rounds]
    print(f"  send : xadd = {statistics.median(send):.2f}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"enqueue-{stamp}.json").write_text(json.dumps({"n": a.n, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    uvloop.run(main())
