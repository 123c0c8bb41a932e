"""How long a high-priority invocation waits to start behind a backlog of normal ones.

    .venv/bin/python -m load_tests.bench_priority                  # 10,000 queued, 5 runs
    .venv/bin/python -m load_tests.bench_priority --backlog 10000 --runs 5

Per run, on one embedded Valkey (appendfsync always): FLUSHALL; place ``--backlog`` normal no-op
invocations (batches of 500 per script call); start ONE worker process (``reliq worker``,
defaults: concurrency 100, batch 100) and, once it has finished the first 1,000, send one
``mark`` with ``priority="high"`` and, right after it, one with normal priority. ``mark``
returns how long after its send it started. Reported: p50 (and max) over the runs of the high
one's wait, against the normal one's (which waits for the rest of the backlog) and the backlog
left when they were sent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey

ROOT = Path(__file__).resolve().parents[1]


def spawn(url: str) -> subprocess.Popen[bytes]:
    """One worker process (in its own session: stopped by its process group id)."""
    cmd = [sys.executable, "-m", "reliq", "--redis-url", url, "--log-level", "WARNING", "worker"]
    return subprocess.Popen([*cmd, "load_tests.priority_app:prio"], cwd=ROOT, start_new_session=True)


def stop(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


async def one_run(url: str, backlog: int, deadline: float) -> tuple[float, float, int]:
    async with Client(url) as c:
        await c.redis.execute_command("FLUSHALL")
        for start in range(0, backlog, 500):
            regs = [await c.prepare("prio", "noop", b"null") for _ in range(min(500, backlog - start))]
            await c.register_many(c.where(regs[0].id), regs)
        worker = spawn(url)
        try:
            end = time.monotonic() + deadline
            while await c.backlog("prio") > backlog - 1000:  # draining at full speed now
                if time.monotonic() > end or worker.poll() is not None:
                    raise RuntimeError("the worker did not start draining")
                await asyncio.sleep(0.005)
            left = await c.backlog("prio")
            high = await c.send("prio", "mark", time.time(), priority="high")
            normal = await c.send("prio", "mark", time.time())
            waited_high = float(await c.result(high.id, timeout=deadline))
            waited_normal = float(await c.result(normal.id, timeout=deadline))
            return waited_high, waited_normal, left
        finally:
            stop(worker)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backlog", type=int, default=10_000, help="normal invocations queued ahead")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--deadline", type=float, default=120.0, help="seconds allowed per wait")
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedValkey(data_dir=tmp) as server:
        for i in range(a.runs):
            h, n, left = await one_run(server.url, a.backlog, a.deadline)
            rows.append((h, n, left))
            print(
                f"run {i + 1}: high started after {h:.1f} ms, normal after {n:.0f} ms ({left} queued ahead)"
            )
    highs, normals = [r[0] for r in rows], [r[1] for r in rows]
    print(
        f"\nbacklog {a.backlog} normal no-ops, 1 worker (concurrency 100), {a.runs} runs: "
        f"high-priority start p50 {statistics.median(highs):.1f} ms (max {max(highs):.1f}); "
        f"a normal one sent with it: p50 {statistics.median(normals):.0f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
