"""Scaling on a Valkey Cluster: send and drain rates with 1, 2 and 3 partitions on a 3-primary
cluster, against a single node, in one run (``make bench-cluster``, part of ``make bench``).

    .venv/bin/python -m load_tests.bench_cluster                  # defaults: N = 10,000 per row
    .venv/bin/python -m load_tests.bench_cluster --n 5000 --workers 1

Rows: ``single node`` (one embedded Valkey, the service unpartitioned) and ``cluster, P
partitions`` for P = 1, 2, 3 on one ``EmbeddedCluster`` of 3 primaries (no replicas). Every node
runs ``appendonly yes``, ``appendfsync always``. Each row uses its own service, named so that its
P partitions land on P distinct primaries (hash tags alone do not promise that).

Per row:

1. send: the harness process registers N no-op invocations with ``Client.send`` (random ids,
   spread over the partitions), 64 calls in flight; send/s = N / elapsed.
2. drain, for each worker count in ``--workers`` (default 1 and 2 processes): a fresh backlog of N
   is registered the same way, then the ``reliq worker`` processes start (each consumes every
   partition); drain/s = N / (first heartbeat -> every partition's stream empty, polled every
   5 ms). Correct: the per-minute ``succeeded`` counters of all partitions must add up to N.

The machine has 2 cores shared by the servers, the worker(s) and the harness, so more nodes
cannot add CPU: the numbers show the overhead of the Cluster client and of spreading, and that
the work is spread and fully completed, not the speed-up of real hardware (see the scaling model
printed with the results). Writes load_tests/results/cluster-<timestamp>.json and
cluster-latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reliq import Client
from reliq.devserver.cluster import EmbeddedCluster
from reliq.devserver.embedded import EmbeddedValkey

from .cluster_util import owner, slot_of, slot_owners, spread_service

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "load_tests" / "results"
APP = "load_tests.cluster_bench_app:app"
IN_FLIGHT = 64

MODEL = """\
**Scaling model.** Every invocation costs a fixed amount of Lua and command work on the node
that owns its partition (register, then claim and complete: about 50 µs of server CPU per no-op
invocation on this machine, docs/performance.md) plus Python work in the producer and the worker
(packing commands, the event loop: most of a worker's CPU). With P partitions on P primaries
and enough client processes:

    throughput ≈ min(P x per-node script capacity,  worker processes x per-worker rate,
                     producer processes x per-producer rate)

A single worker process consumes every partition but is still one Python event loop: one process
drains about as fast on 3 partitions as on 1; it is the number of worker processes, on real
cores, that must grow with P. Partitions also shorten each node's queue and fsync batch, so at
low load they cost a little (more, smaller round trips and fsyncs), and a Cluster client adds a
slot lookup per command. **On this 2-core machine** the 3 primaries, the worker(s) and the
harness share 2 CPUs, so no row can be faster than the CPU allows: these rows measure the
overhead of the Cluster client and of partitioning, and check that every partition is consumed
and every invocation completed; they do not show the speed-up of 3 real nodes. Runs on this
shared machine vary by ±10-20 %."""


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip()


async def fill(url: str, service: str, n: int) -> float:
    """Register N no-op invocations, IN_FLIGHT at a time; seconds taken."""
    async with Client(url) as c:
        await c.layout(service, fresh=True)
        sem = asyncio.Semaphore(IN_FLIGHT)

        async def one() -> None:
            async with sem:
                await c.send(service, "noop")

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - t0


async def backlog(c: Client, service: str) -> int:
    return sum([int(await c.redis.xlen(k.stream)) for k in await c.partition_keys(service)])


async def succeeded(c: Client, service: str) -> int:
    total = 0
    for k in await c.partition_keys(service):
        for field, v in (await c.redis.hgetall(k.minutes)).items():
            if field.endswith(b":succeeded"):
                total += int(v)
    return total


def start_workers(url: str, service: str, count: int, tag: str, logs: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(count):
        cmd = [sys.executable, "-m", "reliq", "--redis-url", url, "--log-level", "WARNING", "worker", APP]
        cmd += ["--processes", "1", "--consumer", f"{tag}-{i}"]
        log = open(logs / f"{tag}-{i}.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env={**os.environ, "RELIQ_BENCH_SERVICE": service},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        finally:
            log.close()
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


async def drain(url: str, service: str, n: int, workers: int, tag: str, logs: Path) -> dict[str, Any]:
    """Pre-fill N, start ``workers`` processes, time the drain; check every invocation succeeded."""
    await fill(url, service, n)
    async with Client(url) as c:
        before = await succeeded(c, service)
        procs = start_workers(url, service, workers, tag, logs)
        try:
            k0 = c.keys(service)
            deadline = time.monotonic() + 60
            while not await c.redis.exists(k0.consumer(f"{tag}-0")):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"worker did not start; see {logs}")
                await asyncio.sleep(0.005)
            t0 = time.perf_counter()
            deadline = time.monotonic() + 300
            while await backlog(c, service) > 0:
                if time.monotonic() > deadline:
                    raise TimeoutError("drain did not finish")
                await asyncio.sleep(0.005)
            seconds = time.perf_counter() - t0
            # outcomes are written in batches; the stream empties when the last batch lands
            done = await succeeded(c, service) - before
        finally:
            stop_workers(procs)
    return {
        "workers": workers,
        "drain_per_s": round(n / seconds),
        "seconds": round(seconds, 3),
        "succeeded": done,
    }


async def row(
    label: str, url: str, service: str, partitions: int, n: int, workers: list[int], logs: Path
) -> dict[str, Any]:
    async with Client(url) as c:
        await c.set_partitions(service, partitions)
    send_s = await fill(url, service, n)
    async with Client(url) as c:  # the send backlog is drained before the drain rows (not timed)
        procs = start_workers(url, service, 1, f"{service}-pre", logs)
        try:
            deadline = time.monotonic() + 120
            while await backlog(c, service) > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        finally:
            stop_workers(procs)
    out: dict[str, Any] = {
        "row": label,
        "service": service,
        "partitions": partitions,
        "n": n,
        "send_per_s": round(n / send_s),
        "drain": [],
    }
    for w in workers:
        out["drain"].append(await drain(url, service, n, w, f"{service}-w{w}", logs))
    print(json.dumps(out), flush=True)
    return out


def markdown(result: dict[str, Any]) -> str:
    workers = [d["workers"] for d in result["rows"][0]["drain"]]
    base = result["rows"][0]
    head = ["row", "nodes used", "send/s", "vs single"]
    for w in workers:
        head += [f"drain/s, {w} worker{'s' if w > 1 else ''}", "vs single"]
    lines = ["| " + " | ".join(head) + " |", "|---|--:|" + "--:|" * (len(head) - 2)]
    for r in result["rows"]:
        cells = [
            r["row"],
            str(r["nodes"]),
            f"{r['send_per_s']:,}",
            f"{r['send_per_s'] / base['send_per_s']:.2f}",
        ]
        for d, b in zip(r["drain"], base["drain"], strict=True):
            ok = "" if d["succeeded"] == r["n"] else f" (succeeded {d['succeeded']} of {r['n']}!)"
            cells += [f"{d['drain_per_s']:,}{ok}", f"{d['drain_per_s'] / b['drain_per_s']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    meta = result["meta"]
    return "\n".join(
        [
            f"Cluster scaling, {meta['at']} (commit {meta['commit']}; {meta['cpus']} CPUs; N = "
            f"{result['n']} per row; `{meta['command']}`)",
            "",
            *lines,
            "",
            MODEL,
        ]
    )


async def run(n: int, workers: list[int], logs: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reliq-bench-cluster-") as d:
        with EmbeddedValkey(data_dir=Path(d) / "single") as server:
            r = await row("single node", server.url, "single", 1, n, workers, logs)
            rows.append({**r, "nodes": 1})
        with EmbeddedCluster(Path(d) / "cluster", primaries=3) as cluster:
            slots = slot_owners(cluster.nodes[0].port)
            for p in (1, 2, 3):
                service = spread_service(f"p{p}x", p, cluster.nodes[0].port)
                nodes = len({owner(slots, slot_of(service, i)) for i in range(p)})
                r = await row(
                    f"cluster, {p} partition{'s' if p > 1 else ''}", cluster.url, service, p, n, workers, logs
                )
                rows.append({**r, "nodes": nodes})
    return {"n": n, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m load_tests.bench_cluster", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="invocations per measurement")
    p.add_argument("--workers", default="1,2", help="worker process counts for the drain rows")
    p.add_argument("--results", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    workers = [int(x) for x in a.workers.split(",")]
    a.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = Path(tempfile.mkdtemp(prefix="reliq-bench-cluster-logs-"))
    result = asyncio.run(run(a.n, workers, logs))
    result["meta"] = {
        "at": stamp,
        "commit": git_commit(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "command": "python -m load_tests.bench_cluster "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "note": "2 shared cores: shows overhead and correctness, not the speed-up of real nodes",
    }
    (a.results / f"cluster-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    (a.results / "cluster-latest.md").write_text(md + "\n")
    print(md)
    bad = [r["row"] for r in result["rows"] for d in r["drain"] if d["succeeded"] != r["n"]]
    if bad:
        print(f"FAILED: not every invocation succeeded in {bad}; worker logs in {logs}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
