"""Rough drain rate of one `reliq worker` process for no-op invocations (the full side-by-side
benchmark with peers is `make bench`, a later issue).

    .venv/bin/python -m load_tests.drain --n 20000

Embedded Valkey with appendfsync always; N invocations enqueued first; then one worker process
drains them with every guarantee on (claim with lease epoch, epoch-checked completion, result kept).
Reports enqueue rate, drain rate (worker ready -> stream empty) and the worker's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey
from reliq.store.keys import GROUP, ServiceKeys

EXTRA: list[str] = []
ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(n: int, concurrency: int, url: str) -> dict[str, float]:
    k = ServiceKeys("bench")
    async with Client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        sem = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with sem:
                await c.send("bench", "noop")

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        enqueue = n / (time.perf_counter() - t0)
        proc = subprocess.Popen(  # noqa: ASYNC220
            [
                sys.executable,
                "-m",
                "reliq",
                "--redis-url",
                url,
                "--log-level",
                "WARNING",
                "worker",
                "load_tests.noop_app:bench",
                "--processes",
                "1",
                "--consumer",
                "bench-1",
                *EXTRA,
            ],
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + 60
            while not await c.redis.exists(k.consumer("bench-1")):
                if time.monotonic() > deadline:
                    raise TimeoutError("worker did not start")
                await asyncio.sleep(0.005)
            t1 = time.perf_counter()
            deadline = time.monotonic() + 300
            while await c.redis.xlen(k.stream) > 0:
                if time.monotonic() > deadline:
                    raise TimeoutError("drain did not finish")
                await asyncio.sleep(0.005)
            drain = n / (time.perf_counter() - t1)
            rss = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    return {
        "n": n,
        "enqueue_per_s": round(enqueue),
        "drain_per_s": round(drain),
        "worker_peak_rss_mb": round(rss, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=64, help="enqueue concurrency")
    p.add_argument("worker_args", nargs="*", help="extra `reliq worker` options, after --")
    a = p.parse_args()
    EXTRA.extend(a.worker_args)
    with tempfile.TemporaryDirectory() as d, EmbeddedValkey(data_dir=d) as server:
        print(json.dumps(asyncio.run(run(a.n, a.concurrency, server.url))))


if __name__ == "__main__":
    main()
