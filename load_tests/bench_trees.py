"""Durable function trees with one worker process: throughput, and memory with many suspended.

    .venv/bin/python -m load_tests.bench_trees                      # both parts, ~3 minutes
    .venv/bin/python -m load_tests.bench_trees --parents 50 --duration 1 --rounds 1   # smoke

One embedded Valkey (AOF, ``appendfsync always``); the service is ``load_tests/tree_app.py``.

Part 1, throughput (one ``reliq worker`` process with its defaults, running all along): this
process keeps ``--inflight`` trees in flight (``Client.send`` then ``Client.result``, a new one as
soon as one returns) for a 2 s warm-up and ``--duration`` s, and counts the results that came back
in the measured window. Modes, alternated within each round: ``plain`` (the same work in one
invocation), ``parent`` (parent -> child -> result with the default grace: a fast child is awaited
in memory), ``parent_s0`` (``suspend_after=0``: every parent suspends at its call and is replayed
once the child is done). Besides trees/s: suspensions per tree (the records' ``susp`` of a sample),
and the CPU the worker and Valkey spent per tree in the window.

Part 2, many suspended (``reliq worker --concurrency 10``): N parents are sent first, then one
worker is started and runs them all; the worker's RSS (``VmRSS``) and the size of the suspended
set are sampled every 100 ms until every tree is done (every result is then checked). Once with
``--parents`` (10,000) and once with 100: the peak RSS of each, side by side.

Writes load_tests/results/trees-<timestamp>.json and trees-latest.md; prints the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from load_tests.bench_gateway import RESULTS, reliq, running
from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey
from reliq.store.keys import ServiceKeys

SERVICE = "trees"
MODES = ("plain", "parent", "parent_s0")
WARMUP_S = 2.0
TICKS = os.sysconf("SC_CLK_TCK")


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def valkey_cpu_s(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def start_worker(stack: ExitStack, url: str, work: Path, r: redis.Redis, name: str, *extra: str) -> int:
    args = reliq(url, "worker", "load_tests.tree_app:trees", "--processes", "1", "--consumer", name, *extra)
    pid = stack.enter_context(running(name, args, work))
    deadline = time.monotonic() + 60
    while not r.exists(ServiceKeys(SERVICE).consumer(name)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker {name} did not start: {(work / f'{name}.log').read_text()[-2000:]}")
        time.sleep(0.01)
    return pid


async def closed_loop(
    c: Client, handler: str, inflight: int, seconds: float, warmup: float, meter: Any
) -> dict[str, Any]:
    """Keep ``inflight`` trees in flight for the warm-up and ``seconds``; count those done in the
    measured window (``meter`` is called at its start and end)."""
    loop = asyncio.get_running_loop()
    begin = loop.time() + warmup
    end = begin + seconds
    done: list[str] = []
    marks: list[dict[str, float]] = []

    async def mark(at: float) -> None:
        await asyncio.sleep(max(0.0, at - loop.time()))
        marks.append(meter())

    async def caller(n: int) -> None:
        while loop.time() < end:
            acc = await c.send(SERVICE, handler, n)
            if (got := await c.result(acc.id, timeout=60)) != n * 2 + 1:
                raise AssertionError(f"{handler}({n}) returned {got!r}")
            if begin <= loop.time() < end:
                done.append(acc.id)
            n += inflight

    await asyncio.gather(mark(begin), mark(end), *(caller(k) for k in range(inflight)))
    sample = done[:: max(1, len(done) // 200)]
    susp = [(await c.get(i)) for i in sample]
    worker_cpu = marks[1]["worker"] - marks[0]["worker"]
    valkey_cpu = marks[1]["valkey"] - marks[0]["valkey"]
    trees = len(done)
    return {
        "mode": handler,
        "trees": trees,
        "trees_per_s": round(trees / seconds),
        "suspensions_per_tree": round(sum(d.suspensions for d in susp if d) / max(1, len(susp)), 3),
        "worker_cpu_us_per_tree": round(worker_cpu / max(1, trees) * 1e6, 1),
        "valkey_cpu_us_per_tree": round(valkey_cpu / max(1, trees) * 1e6, 1),
        "load_before": marks[0]["load"],
    }


def throughput(
    url: str, work: Path, rounds: int, seconds: float, inflight: int, warmup: float = WARMUP_S
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack, redis.Redis.from_url(url) as r:
        pid = start_worker(stack, url, work, r, "trees-tp")

        def meter() -> dict[str, float]:
            return {"worker": cpu_s(pid), "valkey": valkey_cpu_s(r), "load": loadavg()}

        async def go() -> None:
            async with Client(url) as c:
                for rnd in range(rounds):
                    for mode in MODES if rnd % 2 == 0 else MODES[::-1]:
                        row = {
                            "round": rnd + 1,
                            **await closed_loop(c, mode, inflight, seconds, warmup, meter),
                        }
                        print(f"[throughput] {row}", file=sys.stderr, flush=True)
                        rows.append(row)

        asyncio.run(go())
    return rows


async def send_parents(url: str, n: int) -> list[str]:
    async with Client(url) as c:
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> str:
            async with sem:
                return (await c.send(SERVICE, "parent", i)).id

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def many_suspended(url: str, work: Path, n: int) -> dict[str, Any]:
    """Send ``n`` parents, then run them with one ``--concurrency 10`` worker; sample its RSS."""
    k = ServiceKeys(SERVICE)
    with ExitStack() as stack, redis.Redis.from_url(url) as r:
        r.flushall()
        ids = asyncio.run(send_parents(url, n))
        mem0 = int(r.info("memory")["used_memory"])
        pid = start_worker(stack, url, work, r, f"trees-s{n}", "--concurrency", "10")
        t0, load = time.perf_counter(), loadavg()
        samples: list[tuple[float, int, int, int]] = []  # (s, rss KB, suspended, stream)
        deadline = time.monotonic() + 600
        while True:
            pipe = r.pipeline(transaction=False)
            pipe.zcard(k.suspended).xlen(k.stream).xlen(k.outbox).zcard(k.delayed)
            suspended, stream, outbox, delayed = pipe.execute()
            samples.append((time.perf_counter() - t0, status_kb(pid, "VmRSS"), suspended, stream))
            if suspended == stream == outbox == delayed == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} parents not done: {samples[-1]}")
            time.sleep(0.1)
        seconds = time.perf_counter() - t0
        hwm = status_kb(pid, "VmHWM")
        mem_peak = int(r.info("memory")["used_memory_peak"])
    states = check_results(url, ids)
    peak = max(samples, key=lambda s: s[2])
    return {
        "parents": n,
        "seconds": round(seconds, 2),
        "trees_per_s": round(n / seconds),
        "max_suspended": peak[2],
        "rss_mb_at_max_suspended": round(peak[1] / 1024, 1),
        "rss_mb_first_sample": round(samples[0][1] / 1024, 1),
        "peak_rss_mb": round(max(s[1] for s in samples) / 1024, 1),
        "vmhwm_mb": round(hwm / 1024, 1),
        "valkey_used_memory_mb_before": round(mem0 / 2**20, 1),
        "valkey_used_memory_peak_mb": round(mem_peak / 2**20, 1),
        "results": states,
        "load_before": load,
        "samples": [[round(t, 2), kb, s, q] for t, kb, s, q in samples],
    }


def check_results(url: str, ids: list[str]) -> dict[str, int]:
    async def go() -> list[bool]:
        async with Client(url) as c:
            return [await c.result(i, timeout=60) == n * 2 + 1 for n, i in enumerate(ids)]

    ok = asyncio.run(go())
    return {k: v for k, v in (("ok", sum(ok)), ("wrong", len(ok) - sum(ok))) if v}


def markdown(doc: dict[str, Any]) -> str:
    lines = [f"# Durable function trees, one worker process ({doc['timestamp']})", ""]
    tp = doc["throughput"]
    if tp:
        lines += [
            f"Throughput: {doc['inflight']} trees in flight (send + result), {doc['warmup_s']:.0f} s "
            f"warm-up then {doc['duration_s']:.0f} s per mode, modes alternated, {doc['rounds']} rounds; "
            "one worker with its defaults; Valkey appendfsync always.",
            "",
            "| mode | trees/s per round | median | vs plain | suspensions/tree | worker CPU us/tree | "
            "Valkey CPU us/tree |",
            "|---|---|--:|--:|--:|--:|--:|",
        ]
        med = {m: statistics.median(r["trees_per_s"] for r in tp if r["mode"] == m) for m in MODES}
        for m in MODES:
            rs = [r for r in tp if r["mode"] == m]
            per = " / ".join(f"{r['trees_per_s']:,}" for r in rs)
            cpu_w = statistics.median(r["worker_cpu_us_per_tree"] for r in rs)
            cpu_v = statistics.median(r["valkey_cpu_us_per_tree"] for r in rs)
            susp = statistics.median(r["suspensions_per_tree"] for r in rs)
            lines.append(
                f"| {m} | {per} | {med[m]:,.0f} | {med[m] / med['plain']:.2f} | {susp:.2f} | "
                f"{cpu_w:,.0f} | {cpu_v:,.0f} |"
            )
        loads = [r["load_before"] for r in tp]
        lines += ["", f"1-min load average at the start of each window: {min(loads):.2f}-{max(loads):.2f}."]
    ms = doc["many_suspended"]
    if ms:
        lines += [
            "",
            "Many suspended: N parents sent first, then one `reliq worker --concurrency 10`; RSS sampled "
            "every 100 ms until every tree is done.",
            "",
            "| parents | s | trees/s | max suspended | RSS MB at that moment | peak RSS MB | VmHWM MB | "
            "Valkey used_memory peak MB | results |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|---|",
        ]
        for r in ms:
            lines.append(
                f"| {r['parents']:,} | {r['seconds']} | {r['trees_per_s']:,} | {r['max_suspended']:,} | "
                f"{r['rss_mb_at_max_suspended']} | {r['peak_rss_mb']} | {r['vmhwm_mb']} | "
                f"{r['valkey_used_memory_peak_mb']} | {r['results']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=8.0, help="measured seconds per throughput mode")
    p.add_argument("--rounds", type=int, default=2, help="throughput rounds (modes alternate)")
    p.add_argument("--warmup", type=float, default=WARMUP_S, help="seconds before each window")
    p.add_argument("--inflight", type=int, default=32, help="trees kept in flight (throughput)")
    p.add_argument("--parents", type=int, default=10_000, help="parents of the many-suspended run")
    p.add_argument("--small", type=int, default=100, help="parents of the comparison run")
    p.add_argument("--only", choices=("throughput", "suspended"), help="run one part")
    p.add_argument("--no-save", action="store_true", help="print only; write no results file")
    a = p.parse_args()
    doc: dict[str, Any] = {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": a.duration,
        "warmup_s": a.warmup,
        "rounds": a.rounds,
        "inflight": a.inflight,
        "cpus": os.cpu_count(),
        "throughput": [],
        "many_suspended": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-trees-") as d, EmbeddedValkey(data_dir=Path(d) / "v") as s:
        if a.only != "suspended":
            doc["throughput"] = throughput(s.url, Path(d), a.rounds, a.duration, a.inflight, a.warmup)
        if a.only != "throughput":
            for n in (a.small, a.parents):
                row = many_suspended(s.url, Path(d), n)
                print(f"[suspended] { {k: v for k, v in row.items() if k != 'samples'} }", file=sys.stderr)
                doc["many_suspended"].append(row)
    table = markdown(doc)
    if not a.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = doc["timestamp"].replace("-", "").replace(":", "")
        (RESULTS / f"trees-{stamp}.json").write_text(json.dumps(doc, indent=1) + "\n")
        (RESULTS / "trees-latest.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
