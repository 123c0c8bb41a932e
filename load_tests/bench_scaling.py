"""Scaling curves of the worker: processes, queued work, services.

    .venv/bin/python -m load_tests.bench_scaling                       # the quick set
    .venv/bin/python -m load_tests.bench_scaling --sizes 10000,100000,1000000 --services 1,10,100

One embedded Valkey (appendfsync always), flushed between runs. Each run: the consumer groups are
created, N no-op invocations are queued (spread evenly over the services of
``load_tests/scaling_app.py``) by the producer path of ``Client.send`` in batches of 500 per
script call, with ``appendfsync no`` while the queue fills, so that a million fit in one to three
minutes: the fill is not what is measured; ``always`` again for the drain. Then ``reliq worker
load_tests.scaling_app:app --processes P`` (defaults otherwise) drains them. The drain rate is
timed from the first entry settled to the last (the worker's start-up is not in it), and so is
the CPU per invocation (the worker's processes from ``/proc``, Valkey's from ``INFO cpu``): less
noisy than the rate on a shared machine, and the figure that must stay flat as N grows. RSS is
each worker process's peak (``VmHWM``), summed over processes for P > 1; Valkey's memory is
``used_memory`` (and ``used_memory_rss``) with the queue full. The queued-work runs come last,
as Valkey's allocator keeps the pages a million took.

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

from reliq import Client, codec
from reliq.client import producer
from reliq.devserver.embedded import EmbeddedValkey, free_port
from reliq.store.keys import GROUP, ServiceKeys

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "load_tests" / "results"
APP = "load_tests.scaling_app:app"
BATCH = 500  # registrations per script call while the queue fills


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
    """Queue ``n`` no-ops round robin over ``names`` in batches of ``BATCH`` per script call (the
    producer path of ``Client.send``: ``prepare`` then ``register_many``, as the gateway batches
    concurrent sends), 8 batches in flight; the rate. A million fills in one to three minutes instead
    of ten or more, and no more than 8 batches of registrations are held in memory."""
    body = codec.encode(None)
    sem = asyncio.Semaphore(8)

    async def batch(service: str, count: int) -> None:
        async with sem:
            regs = [await c.prepare(service, "noop", body) for _ in range(count)]
            placed = await c.register_many(c.where(regs[0].id), regs)  # one partition per service
            for reg, status in zip(regs, placed, strict=True):
                producer.accepted(service, "noop", reg.id, status)  # raises for a refused one

    t0 = time.perf_counter()
    per = [n // len(names) + (i < n % len(names)) for i in range(len(names))]
    jobs = [(name, min(BATCH, k - j)) for name, k in zip(names, per, strict=True) for j in range(0, k, BATCH)]
    for start in range(0, len(jobs), 64):  # bounded task lists for a million
        await asyncio.gather(*(batch(*job) for job in jobs[start : start + 64]))
    return n / (time.perf_counter() - t0)


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (``/proc/PID/stat``)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


async def valkey_cpu_s(c: Client) -> float:
    info = await c.redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


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
        mem = await c.redis.info("memory")
        used = int(mem["used_memory"]) - before

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
            limit = 900 + n / 500  # a million at 500/s on a loaded machine: 45 minutes
            deadline = time.monotonic() + limit
            left = n
            while left == n:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the worker settled nothing within {limit:.0f} s")
                left = await backlog()
                await asyncio.sleep(0.01)
            t_first, at_first = time.perf_counter(), left
            cpu0, vk0 = cpu_s(tree_pids(proc.pid)), await valkey_cpu_s(c)
            while left > 0:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{n} not drained within {limit:.0f} s")
                await asyncio.sleep(0.02 if services < 50 else 0.1)
                left = await backlog()
            elapsed = time.perf_counter() - t_first
            pids = tree_pids(proc.pid)
            cpu, vk = cpu_s(pids) - cpu0, await valkey_cpu_s(c) - vk0
            rss = [peak_rss_mb(p) for p in pids]
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
        "valkey_used_mb": round(int(mem["used_memory"]) / 2**20, 1),  # with the queue full
        "valkey_rss_mb": round(int(mem["used_memory_rss"]) / 2**20, 1),  # the allocator keeps freed pages
        "drain_s": round(elapsed, 2),
        "worker_cpu_us_per_inv": round(cpu / at_first * 1e6, 1),  # during the drain, all processes
        "valkey_cpu_us_per_inv": round(vk / at_first * 1e6, 1),
    }


async def bench(a: argparse.Namespace, work: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"processes": [], "sizes": [], "services": []}
    with EmbeddedValkey(free_port(), work / "data") as server:
        plan = [("processes", a.n, 1, p) for p in a.processes_list]
        plan += [("services", a.n, s, 1) for s in a.services]
        plan += [("sizes", n, 1, 1) for n in a.sizes]  # last: Valkey keeps the pages a million took
        for part, n, services, processes in plan:
            print(
                f"[scaling] {part}: n={n} services={services} processes={processes}",
                file=sys.stderr,
                flush=True,
            )
            load = os.getloadavg()[0]
            row = await run(server.url, n, services, processes, work)
            row["load_before"], row["load_after"] = round(load, 2), round(os.getloadavg()[0], 2)
            print(f"[scaling]   {row}", file=sys.stderr, flush=True)
            out[part].append(row)
    return out


def markdown(doc: dict[str, Any]) -> str:
    r = doc["results"]
    lines = [f"# Scaling ({doc['when']}, load average at start {doc['loadavg']})", ""]
    head = (
        "| queued N | services | processes | load | queued/s | drained/s | worker CPU µs/inv | "
        "Valkey CPU µs/inv | worker RSS MB | Valkey MB (RSS) | Valkey bytes/queued |"
    )
    for part, title in (
        ("processes", "(c) processes"),
        ("sizes", "(d) queued work"),
        ("services", "(e) services"),
    ):
        lines += [f"## {title}", "", head, "|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|"]
        for x in r[part]:
            lines.append(
                f"| {x['n']:,} | {x['services']} | {x['processes']} | "
                f"{x.get('load_before', '')}-{x.get('load_after', '')} | {x['enqueue_per_s']:,.0f} | "
                f"{x['drain_per_s']:,.0f} | {x.get('worker_cpu_us_per_inv', '')} | "
                f"{x.get('valkey_cpu_us_per_inv', '')} | {x['worker_rss_mb']} | "
                f"{x.get('valkey_used_mb', '')} ({x.get('valkey_rss_mb', '')}) | "
                f"{x['valkey_bytes_per_queued']} |"
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
