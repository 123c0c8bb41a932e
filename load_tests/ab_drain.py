"""Two sets of worker options against each other: one ``reliq worker`` process drains N no-op
entries, runs alternated in pairs (A B, B A, ...) on one embedded Valkey (``appendfsync always``,
auto AOF rewrite off), so that the machine's drift lands on both sides. The way to tell the
adaptive defaults from a tuned worker on this machine (one drain's rate moves 20-40% between
identical runs).

    PYTHONPATH=$PWD python -m load_tests.ab_drain --a "" --b "--concurrency 1000 --batch 500"
    PYTHONPATH=$PWD python -m load_tests.ab_drain --a "" --b "" --root-a /tmp/base  # two checkouts

Each run: FLUSHALL and an AOF rewrite (``bench_workers.reset``), N entries placed with
``Client.send_many`` (batches of 500, from a separate process), then the worker
(``load_tests.peers.reliq_peer:bench``, ``--processes 1``) is started; the drain runs from the
first entry settled (the stream shorter than N) to the stream empty, polled every 5 ms. A worker
that exits meanwhile ends the run with an error. Prints each run's rate, each side's median and
the ratio B/A of each pair. ``--root-a``/``--root-b``: the checkout each side's worker runs from
(``git worktree add /tmp/base <rev>``; default this one).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from load_tests.bench_workers import reset
from reliq.devserver.embedded import EmbeddedValkey
from reliq.store.keys import ServiceKeys

ROOT = Path(__file__).resolve().parents[1]
STREAM = ServiceKeys("bench").stream
FILL = """
import asyncio, sys
from reliq import Client
async def go(url, n):
    async with Client(url) as c:
        for i in range(0, n, 500):
            await c.send_many("bench", "noop", [None] * min(500, n - i))
asyncio.run(go(sys.argv[1], int(sys.argv[2])))
"""


def drain(
    r: redis.Redis, url: str, n: int, options: list[str], root: Path = ROOT, timeout: float = 300.0
) -> float:
    """One run from an empty server: entries per second from the first settled to the last."""
    reset(r)  # FLUSHALL and a rewritten AOF, waited for (bounded)
    subprocess.run([sys.executable, "-c", FILL, url, str(n)], check=True, cwd=ROOT)
    if int(r.xlen(STREAM)) != n:
        raise RuntimeError(f"{r.xlen(STREAM)} entries in {STREAM}, expected {n}")
    cmd = [sys.executable, "-m", "reliq", "--redis-url", url, "--log-level", "WARNING", "worker"]
    cmd += ["load_tests.peers.reliq_peer:bench", "--processes", "1", *options]
    env = {**os.environ, "PYTHONPATH": str(root)}
    worker = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while int(r.xlen(STREAM)) >= n:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker ({shlex.join(options)}) did not start draining")
            time.sleep(0.002)
        t0 = time.monotonic()
        while int(r.xlen(STREAM)) > 0:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker ({shlex.join(options)}) did not drain the stream")
            time.sleep(0.005)
        return n / (time.monotonic() - t0)
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", default="", help="worker options of side A (the baseline), one string")
    p.add_argument("--b", default="--concurrency 1000 --batch 500", help="worker options of side B")
    p.add_argument("--n", type=int, default=60000, help="entries per drain")
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--root-a", type=Path, default=ROOT, help="the checkout side A's worker runs from")
    p.add_argument("--root-b", type=Path, default=ROOT, help="the checkout side B's worker runs from")
    a = p.parse_args()
    sides = [shlex.split(a.a), shlex.split(a.b)]
    roots = [a.root_a.resolve(), a.root_b.resolve()]
    rates: list[list[float]] = [[], []]
    with tempfile.TemporaryDirectory(prefix="ab-drain-") as d:
        extra = {"auto-aof-rewrite-percentage": "0"}
        with EmbeddedValkey(data_dir=Path(d) / "valkey", extra=extra) as server:
            r = redis.Redis.from_url(server.url)
            for k in range(a.pairs):
                for i in (0, 1) if k % 2 == 0 else (1, 0):
                    rate = drain(r, server.url, a.n, sides[i], roots[i])
                    rates[i].append(rate)
                    print(f"{'AB'[i]} {time.strftime('%H:%M:%S')} {rate:,.0f}/s", flush=True)
            r.close()
    for i, opts in enumerate(sides):
        print(f"{'AB'[i]} {roots[i]} [{shlex.join(opts)}]: median {statistics.median(rates[i]):,.0f}/s")
    ratios = [round(b / x, 2) for x, b in zip(rates[0], rates[1], strict=True)]
    print(f"B/A per pair: {ratios}, median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
