"""Scaling curves of the worker: processes, queued work, services.

    .venv/bin/python -m load_tests.bench_scaling                       # the quick set
    .venv/bin/python -m load_tests.bench_scaling --sizes 10000,100000,1000000 --services 1,10,100

One embedded Valkey (appendfsync always), flushed between runs. Each run: the consumer groups are
created, N no-op invocations are queued with ``Client.send`` (256 at a time, spread evenly over the
services of ``load_tests/scaling_app.py``; with ``appendfsync no`` while the queue fills, so that
a million fit in minutes: the fill is not what is measured; ``always`` again for the drain), then
``reliq worker load_tests.scaling_app:app --processes P`` (defaults otherwise) drains them. The
drain rate is timed from the first entry settled to the last (the worker's start-up is not in
it); RSS is each worker process's peak (``VmHWM``), summed over processes for P > 1; Valkey's
memory is ``used_memory`` with the queue full.

(c) processes: P = 1 and 2 (``--processes-list``), N = ``--n``, one service
(d) queued work: N in ``--sizes``, P = 1, one service
(e) services: 1, 10, 100 services (``--services``), N = ``--n``, P = 1

Writes load_tests/results/scaling-<timestamp>.json and scaling-latest.md; prints the table.
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
from pathlib import Path
from typing import Any

from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey, free_port
from reliq.store.keys import GROUP, ServiceKeys

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "load_tests" / "results"
APP = "load_tests.scaling_app:app"


def tree_pids(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
    return out


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def queue(c: Client, names: list[str], n: int) -> float:
    """Queue ``n`` no-ops round robin over ``names``; the rate."""
    sem = asyncio.Semaphore(256)

    async def one(i: int) -> None:
        async with sem:
            await c.send(names[i % len(names)], "noop")

    t0 = time.perf_counter()
    for start in range(0, n, 20_000):  # bounded task lists for a million
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 20_000))))
    return n / (time.perf_counter() - t0)


async def run(url: str, n: int, services: int, processes: int, work: Path) -> dict[str, Any]:
    names = [f"scale{i}" for i in range(services)]
    streams = [ServiceKeys(s).stream for s in names]
    async with Client(url) as c:
        await c.redis.execute_command("FLUSHALL", "SYNC")
        for s in streams:
            await c.redis.xgroup_create(s, GROUP, id="0", mkstream=True)
        before = int((await c.redis.info("memory"))["used_memory"])
        await c.redis.config_set("appendfsync", "no")  # filling the queue is not what is measured
        try:
            enqueue = await queue(c, names, n)
        finally:
            await c.redis.config_set("appendfsync", "always")
        used = int((await c.redis.info("memory"))["used_memory"]) - before

        async def backlog() -> int:
            async with c.redis.pipeline(transaction=False) as p:
                for s in streams:
                    p.xlen(s)
                return sum(int(x) for x in await p.execute())

        cmd = [sys.executable, "-m", "reliq", "--redis-url", url, "--log-level", "WARNING", "worker", APP]
        cmd += ["--processes", str(processes)]
        env = {**os.environ, "BENCH_SERVICES": str(services)}
        with open(work / f"worker-{n}-{services}-{processes}.log", "wb") as log:  # noqa: ASYNC230
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
        try:
            deadline = time.monotonic() + 900
            left = n
            while left == n:
                left = await backlog()
                await asyncio.sleep(0.01)
            t_first, at_first = time.perf_counter(), left
            while left > 0:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{n} not drained within 900 s")
                await asyncio.sleep(0.02 if services < 50 else 0.1)
                left = await backlog()
            elapsed = time.perf_counter() - t_first
            rss = [peak_rss_mb(p) for p in tree_pids(proc.pid)]
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 60)
    workers = rss[1:] if processes > 1 else rss  # the supervisor itself is not a worker
    return {
        "n": n,
        "services": services,
        "processes": processes,
        "enqueue_per_s": round(enqueue, 1),
        "drain_per_s": round(at_first / elapsed, 1),
        "worker_rss_mb": round(sum(workers), 1),
        "supervisor_rss_mb": round(rss[0], 1) if processes > 1 else None,
        "valkey_bytes_per_queued": round(used / n, 1),
    }


async def bench(a: argparse.Namespace, work: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"processes": [], "sizes": [], "services": []}
    with EmbeddedValkey(free_port(), work / "data") as server:
        plan = [("processes", a.n, 1, p) for p in a.processes_list]
        plan += [("sizes", n, 1, 1) for n in a.sizes]
        plan += [("services", a.n, s, 1) for s in a.services]
        for part, n, services, processes in plan:
            print(
                f"[scaling] {part}: n={n} services={services} processes={processes}",
                file=sys.stderr,
                flush=True,
            )
            row = await run(server.url, n, services, processes, work)
            print(f"[scaling]   {row}", file=sys.stderr, flush=True)
            out[part].append(row)
    return out


def markdown(doc: dict[str, Any]) -> str:
    r = doc["results"]
    lines = [f"# Scaling ({doc['when']}, load average at start {doc['loadavg']})", ""]
    head = "| queued N | services | processes | queued/s | drained/s | worker RSS MB | Valkey bytes/queued |"
    for part, title in (
        ("processes", "(c) processes"),
        ("sizes", "(d) queued work"),
        ("services", "(e) services"),
    ):
        lines += [f"## {title}", "", head, "|--:|--:|--:|--:|--:|--:|--:|"]
        for x in r[part]:
            lines.append(
                f"| {x['n']:,} | {x['services']} | {x['processes']} | {x['enqueue_per_s']:,.0f} | "
                f"{x['drain_per_s']:,.0f} | {x['worker_rss_mb']} | {x['valkey_bytes_per_queued']} |"
            )
        lines.append("")
    return "\n".join(lines)


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20_000, help="queued invocations for (c) and (e)")
    p.add_argument("--processes-list", type=ints, default=[1, 2])
    p.add_argument("--sizes", type=ints, default=[10_000, 100_000])
    p.add_argument("--services", type=ints, default=[1, 10, 100])
    a = p.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="reliq-scaling-") as tmp:
        results = asyncio.run(bench(a, Path(tmp)))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    doc = {"when": stamp, "loadavg": [round(x, 2) for x in load], "args": vars(a), "results": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"scaling-{stamp}.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = markdown(doc)
    (RESULTS / "scaling-latest.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
