"""Latency, not throughput: send-to-start on an idle system and under load, and ``/call`` end to end.

    .venv/bin/python -m load_tests.bench_latency --probes 300 --load 0.5 --call-seconds 5

Everything on loopback: one embedded Valkey (appendfsync always), one ``reliq worker
load_tests.latency_app:app --processes 1`` (defaults), a gateway for (c).

(a) idle: ``--probes`` sends of ``lat.started(sent_at)``, one at a time (the next once the last has
    finished). ``started`` returns the wall clock when its handler starts, so per probe:
    send-to-start (before ``Client.send`` -> handler start: registration with its fsync, then
    pickup) and ack-to-start (``send`` returned -> handler start: the pickup alone, what SAQ's
    "< 5 ms" is about).
(b) under load: the worker's capacity is measured first (``--capacity-n`` no-ops queued, then
    drained: C/s); a generator process sends no-ops at ``--load`` x C per second (open loop,
    ``Client.send`` from up to 256 coroutines; the rate it reached is reported) while the
    probes run, 20 per second.
(c) ``POST /call/lat/noop`` through the gateway with one connection (``wrk -t1 -c1 --latency``),
    after a 2 s warm-up: the end-to-end latency of a no-op call, HTTP to HTTP.
(d) with ``--restate``: the same call, and the one-way send (its 202), at one connection beside
    Restate's no-op (``/bench/noop``, ``/bench/noop/send``), ``--rounds`` rounds alternated, each
    system on a fresh start (load_tests/latency_restate.py). Skipped, with a line saying so,
    when the Restate anchor is not set up (``setup.sh`` of ``--restate-dir``).

    .venv/bin/python -m load_tests.bench_latency --probes 300 --restate --rounds 3

Writes load_tests/results/latency-<timestamp>.json and latency-latest.md; prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey, free_port

from . import latency_restate
from .bench_gateway import reliq, running, wait_http
from .bench_trees_restate import ANCHOR, anchor_missing

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "load_tests" / "results"
APP = "load_tests.latency_app:lat"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 0.50), 3),
        "p99_ms": round(pct(ms, 0.99), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


async def probe(c: Client) -> tuple[float, float]:
    t0 = time.time()
    acc = await c.send("lat", "started", t0)
    t_ack = time.time()
    start = float(await c.result(acc.id, 300))  # under load it waits behind the backlog
    return (start - t0) * 1000, (start - t_ack) * 1000


async def probes(c: Client, n: int, pace: float | None) -> dict[str, Any]:
    """``n`` probes, one after the other; with ``pace``, at most one per ``pace`` seconds."""
    send_start: list[float] = []
    ack_start: list[float] = []
    for _ in range(n):
        t = time.monotonic()
        a, b = await probe(c)
        send_start.append(a)
        ack_start.append(b)
        if pace is not None:
            await asyncio.sleep(max(0.0, pace - (time.monotonic() - t)))
    return {"send_to_start": summary(send_start), "ack_to_start": summary(ack_start)}


async def wait_empty(c: Client, service: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while await c.backlog(service) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service} did not drain within {timeout} s")
        await asyncio.sleep(0.02)


async def capacity(c: Client, n: int, worker_pid: int) -> float:
    """Queue ``n`` no-ops while the worker is stopped (SIGSTOP), then time its drain."""
    os.kill(worker_pid, 19)  # SIGSTOP: the queue fills first
    try:
        sem = asyncio.Semaphore(128)

        async def one() -> None:
            async with sem:
                await c.send("lat", "noop")

        await asyncio.gather(*(one() for _ in range(n)))
    finally:
        os.kill(worker_pid, 18)  # SIGCONT
    t0 = time.perf_counter()
    await wait_empty(c, "lat")
    return n / (time.perf_counter() - t0)


async def generate(url: str, rate: float, seconds: float) -> dict[str, float]:
    """Send no-ops at ``rate`` per second for ``seconds`` (the generator process)."""
    sent = 0
    sem = asyncio.Semaphore(256)
    async with Client(url) as c:

        async def one() -> None:
            nonlocal sent
            async with sem:
                await c.send("lat", "noop")
                sent += 1

        tasks: set[asyncio.Task[None]] = set()
        t0 = time.monotonic()
        due = 0
        while (now := time.monotonic() - t0) < seconds:
            while due < rate * now:
                due += 1
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        return {"rate_asked": rate, "rate_sent": sent / (time.monotonic() - t0)}


def wrk_call(port: int, seconds: int, work: Path) -> dict[str, Any]:
    lua = work / "call.lua"
    lua.write_text(latency_restate.LUA)
    return latency_restate.wrk_c1(f"http://127.0.0.1:{port}/call/lat/noop", seconds, lua)


async def bench(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with EmbeddedValkey(free_port(), work / "data") as server:
        url = server.url
        worker = reliq(url, "worker", APP, "--processes", "1")
        with running("worker", worker, work) as worker_pid:
            async with Client(url) as c:
                await asyncio.wait_for(probe(c), 60)  # the worker is up
                print("[latency] idle probes", file=sys.stderr, flush=True)
                out["idle"] = await probes(c, a.probes, None)
                print("[latency] capacity", file=sys.stderr, flush=True)
                cap = await capacity(c, a.capacity_n, worker_pid)
                out["capacity_per_s"] = round(cap, 1)
                rate = a.load * cap
                seconds = a.probes / 20 + 2
                gen = [
                    sys.executable,
                    "-m",
                    "load_tests.bench_latency",
                    "--url",
                    url,
                    "--generate",
                    str(rate),
                ]
                gen += ["--seconds", str(seconds)]
                print(f"[latency] probes under {rate:.0f}/s of load", file=sys.stderr, flush=True)
                proc = subprocess.Popen(gen, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220
                await asyncio.sleep(1.0)  # the load runs before the first probe
                loaded = await probes(c, a.probes, 1 / 20)
                stdout, _ = await asyncio.to_thread(proc.communicate)
                loaded["generator"] = json.loads(stdout.strip().splitlines()[-1])
                loaded["backlog_after"] = await c.backlog("lat")
                out["loaded"] = {"load": a.load, **loaded}
                await wait_empty(c, "lat")
            port = free_port()
            gateway = reliq(url, "gateway", "--port", str(port), "--app", APP)
            with running("gateway", gateway, work):
                wait_http(f"http://127.0.0.1:{port}/readyz", "gateway", work)
                print("[latency] /call with one connection", file=sys.stderr, flush=True)
                out["call_c1"] = await asyncio.to_thread(wrk_call, port, a.call_seconds, work)
    if a.restate:
        why = anchor_missing(a.restate_dir)
        if why is not None:
            print(f"[latency] {why}: the comparison with Restate is skipped", file=sys.stderr, flush=True)
            out["restate_c1"] = {"skipped": why}
        else:
            args = (a.rounds, a.restate_seconds, a.restate_dir, work, a.max_load)
            out["restate_c1"] = await asyncio.to_thread(latency_restate.compare, *args)
    return out


def markdown(doc: dict[str, Any]) -> str:
    r = doc["results"]
    lines = [
        f"# Latency ({doc['when']}, load average at start {doc['loadavg']})",
        "",
        "| what | p50 ms | p99 ms | max ms | n |",
        "|---|--:|--:|--:|--:|",
    ]

    def row(label: str, s: dict[str, Any], n: int) -> str:
        return f"| {label} | {s['p50_ms']} | {s['p99_ms']} | {s['max_ms']} | {n} |"

    for phase, when in (("idle", "idle"), ("loaded", f"under {r['loaded']['load']:.0%} load")):
        for k in ("send_to_start", "ack_to_start"):
            lines.append(row(f"{k.replace('_', '-')}, {when}", r[phase][k], r[phase][k]["n"]))
    lines.append(row("`POST /call` no-op, 1 connection", r["call_c1"], r["call_c1"]["requests"]))
    gen = r["loaded"]["generator"]
    lines += [
        "",
        f"Worker capacity {r['capacity_per_s']:.0f}/s; load asked {gen['rate_asked']:.0f}/s, sent "
        f"{gen['rate_sent']:.0f}/s; backlog after the loaded probes: {r['loaded']['backlog_after']}.",
    ]
    c1 = r.get("restate_c1")
    if c1 is not None:
        lines += (
            ["", f"Restate: skipped ({c1['skipped']})."] if "skipped" in c1 else latency_restate.markdown(c1)
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--probes", type=int, default=300)
    p.add_argument("--load", type=float, default=0.5, help="background load, a fraction of capacity")
    p.add_argument("--capacity-n", type=int, default=10_000)
    p.add_argument("--call-seconds", type=int, default=5)
    p.add_argument("--restate", action="store_true", help="(d): one connection against Restate")
    p.add_argument("--rounds", type=int, default=3, help="(d): rounds, the systems alternated")
    p.add_argument("--restate-seconds", type=int, default=8, help="(d): measured seconds per shape")
    p.add_argument("--restate-dir", type=Path, default=ANCHOR, help="the anchor scripts (setup.sh run once)")
    p.add_argument("--max-load", type=float, default=2.0, help="(d): wait up to 30 s for a 1-min load below")
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--generate", type=float, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.generate is not None:  # the load generator process
        print(json.dumps(asyncio.run(generate(a.url, a.generate, a.seconds))))
        return
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="reliq-latency-") as tmp:
        results = asyncio.run(bench(a, Path(tmp)))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    doc = {
        "when": stamp,
        "loadavg": [round(x, 2) for x in load],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"latency-{stamp}.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = markdown(doc)
    (RESULTS / "latency-latest.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
