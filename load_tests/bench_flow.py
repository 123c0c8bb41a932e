"""The cost of flow control on the drain: one in-process worker drains N pre-registered no-op
invocations, three ways in the same run, alternated round by round (the machine may be shared):

- ``plain``: no limits;
- ``keyed``: ``concurrency_key`` over 1,000 keys, ``concurrency_limit=1`` (every start takes a
  permit, every completion releases it and admits the next waiter of its key);
- ``rate``: ``rate_limit`` high enough never to bind (every start charges the GCRA bucket).

    .venv/bin/python -m load_tests.bench_flow --n 20000 --rounds 3

Prints drain/s per variant (median over rounds) and the overhead against ``plain``; writes
load_tests/results/flow-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from reliq import Client, Context, Service, Worker
from reliq.codec import fingerprint
from reliq.devserver.embedded import EmbeddedValkey
from reliq.store import flow
from reliq.store.keys import new_id
from reliq.store.replies import Registration
from reliq.worker.config import WorkerConfig

RESULTS = Path(__file__).resolve().parent / "results"
KEYS = 1000


class Item(msgspec.Struct):
    account: int


def service(name: str, variant: str) -> Service:
    svc = Service(name)
    opts: dict[str, object] = {}
    if variant == "keyed":
        opts = {"concurrency_key": "account", "concurrency_limit": 1}
    elif variant == "rate":
        opts = {"rate_limit": "10000000/s"}

    @svc.handler(name="noop", **opts)  # type: ignore[call-overload]
    async def noop(ctx: Context, item: Item) -> None:
        return None

    return svc


async def one(url: str, variant: str, n: int, rnd: int) -> float:
    svc = service(f"bf{variant}{rnd}", variant)
    async with Client(url) as c:
        k = c.keys(svc.name)
        spec = svc.handlers["noop"].flow
        if spec is not None:  # what a worker publishes at start, before anything is sent
            await c.redis.hset(flow.flow_keys(k)[0], "noop", flow.encode(spec))  # type: ignore[attr-defined]
        for i in range(0, n, 500):
            items = []
            for j in range(i, min(n, i + 500)):
                body = b'{"account":%d}' % (j % KEYS)
                items.append(
                    Registration(
                        id=new_id(svc.name), fp=fingerprint("noop", body), handler="noop", payload=body
                    )
                )
            await c.register_many((svc.name, 0), items)
        worker = Worker(svc, url, config=WorkerConfig(concurrency=200, block=0.05))
        task = asyncio.create_task(worker.run())
        t0 = time.perf_counter()
        while True:  # drained: no stream entry (every outcome acked) and no waiter left
            if not (await c.redis.xlen(k.stream) or await c.redis.zcard(flow.flow_keys(k)[3])):
                break
            await asyncio.sleep(0.01)
        took = time.perf_counter() - t0
        worker.stop()
        await task
        return n / took


async def main(n: int, rounds: int) -> dict[str, object]:
    variants = ("plain", "keyed", "rate")
    runs: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as d, EmbeddedValkey(data_dir=Path(d)) as server:
        for r in range(rounds):
            order = variants if r % 2 == 0 else tuple(reversed(variants))
            for v in order:
                runs[v].append(await one(server.url, v, n, r))
                print(f"round {r} {v}: {runs[v][-1]:,.0f}/s", flush=True)
    med = {v: statistics.median(x) for v, x in runs.items()}
    out = {
        "n": n,
        "rounds": rounds,
        "drain_per_s": med,
        "runs": runs,
        "overhead_pct": {v: round(100 * (1 - med[v] / med["plain"]), 1) for v in ("keyed", "rate")},
        "at": datetime.now(UTC).isoformat(),
    }
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    result = asyncio.run(main(a.n, a.rounds))
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"flow-{stamp}.json").write_text(json.dumps(result, indent=2))
