"""CPU per drained no-op invocation, of the worker process and of Valkey, plus drain/s.

    .venv/bin/python -m load_tests.cpu_per_task --n 20000
    PYTHONPATH=/path/to/old/worktree .venv/bin/python load_tests/cpu_per_task.py --n 20000  # an older commit

Embedded Valkey (appendfsync always); N no-op invocations sent first (64 at a time); then one
`reliq worker` process (the reliq on ``sys.path``, ``--processes 1`` where that option exists)
drains them. Measured from the first completion to an empty stream: drain/s, and user + system
CPU of the worker and of valkey-server (``/proc/<pid>/stat``) per invocation drained in that
window. Wall-clock drain/s on 2 shared cores swings by 30% between identical runs; CPU per task
moves less, so it is the figure to compare two versions by (alternate them, several rounds).
Imports work for the layout before the restructuring (e0a15e4) too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from reliq import Client

try:
    from reliq.devserver.embedded import EmbeddedValkey
    from reliq.store.keys import GROUP, ServiceKeys
except ImportError:  # the layout before the restructuring
    from reliq.embedded import EmbeddedValkey  # type: ignore[no-redef]
    from reliq.keys import GROUP, ServiceKeys  # type: ignore[no-redef]

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def until(done: Callable[[], Awaitable[bool]], deadline: float = 300.0) -> None:
    """Poll ``done`` every millisecond for at most ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not await done():
        if time.monotonic() > end:
            raise TimeoutError("the worker did not start or drain in time")
        await asyncio.sleep(0.001)


async def fill(c: Client, n: int) -> None:
    """``n`` no-op invocations of ``bench.noop``, 64 sends at a time (``send`` works with every
    reliq layout this tool measures), behind the group the worker will read."""
    await c.redis.xgroup_create(ServiceKeys("bench").stream, GROUP, id="0", mkstream=True)
    sem = asyncio.Semaphore(64)

    async def one() -> None:
        async with sem:
            await c.send("bench", "noop")

    await asyncio.gather(*(one() for _ in range(n)))


async def run(n: int, url: str, valkey_pid: int, root: str, extra: list[str]) -> dict[str, Any]:
    k = ServiceKeys("bench")
    async with Client(url) as c:
        await fill(c, n)
        cmd = [sys.executable, "-m", "reliq", "--redis-url", url, "--log-level", "WARNING", "worker"]
        args = [*cmd, "load_tests.noop_app:bench", "--consumer", "bench-1", *extra]
        proc = subprocess.Popen(args, cwd=root)  # noqa: ASYNC220
        try:
            await until(lambda: c.redis.exists(k.consumer("bench-1")))

            async def started() -> bool:
                return int(await c.redis.xlen(k.stream)) < n

            await until(started)
            left = await c.redis.xlen(k.stream)
            t1, w1, v1 = time.perf_counter(), cpu_seconds(proc.pid), cpu_seconds(valkey_pid)

            async def drained() -> bool:
                return int(await c.redis.xlen(k.stream)) == 0

            await until(drained)
            t2, w2, v2 = time.perf_counter(), cpu_seconds(proc.pid), cpu_seconds(valkey_pid)
        finally:
            proc.terminate()
            proc.wait(30)
    return {
        "n": n,
        "drain_per_s": round(left / (t2 - t1)),
        "worker_us_per_task": round((w2 - w1) / left * 1e6, 1),
        "valkey_us_per_task": round((v2 - v1) / left * 1e6, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20000)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d, EmbeddedValkey(data_dir=d) as server:
        assert server.proc is not None
        root = os.getcwd()
        extra = ["--processes", "1"] if Path(root, "reliq/worker/supervise.py").exists() else []
        print(json.dumps(asyncio.run(run(a.n, server.url, server.proc.pid, root, extra))))


if __name__ == "__main__":
    main()
