"""One connection, reliq against Restate: a no-op called (HTTP 200 with the result) and sent
(HTTP 202 once durable), ``wrk -t1 -c1 --latency``; part of ``bench_latency --restate``.

Per round and system, on a fresh start: the call first, then the send (Restate works through the
backlog of a send burst before new calls), each after a 2 s warm-up, for ``seconds``. The systems
alternate (reliq first in odd rounds) and the 1-min load average is recorded before each.

- reliq: one embedded Valkey (AOF, ``appendfsync always``), one ``reliq worker
  load_tests.latency_app:lat --processes 1`` (defaults), one gateway at durability ``fsync`` (the
  default); ``POST /call/lat/noop`` and ``POST /send/lat/noop``, body ``null``.
- Restate: the anchor of ``/work/shared/research/restate`` (``$RESTATE_ANCHOR``; ``setup.sh``
  once, then ``start.sh``, ``bench.sh``, ``stop.sh``: load_tests/bench_trees_restate.py),
  ``POST /bench/noop`` and ``POST /bench/noop/send`` through its ingress, body ``null``; its ack
  is a RocksDB WAL write fsynced per batch.
"""

from __future__ import annotations

import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis

from load_tests.bench_gateway import parse_wrk, reliq, running, wait_http, wrk
from load_tests.bench_trees import loadavg
from load_tests.bench_trees_restate import WARMUP_S, calm, restate_wrk
from reliq.devserver.embedded import EmbeddedValkey, free_port
from reliq.store.keys import ServiceKeys

SHAPES = ("call", "send")
RESTATE = {"call": "bench/noop", "send": "bench/noop/send"}
LUA = 'wrk.method = "POST"\nwrk.body = "null"\nwrk.headers["Content-Type"] = "application/json"\n'
CONSUMER = "lat-c1"


def wrk_c1(url: str, seconds: int, lua: Path) -> dict[str, Any]:
    """``wrk -t1 -c1``: a warm-up, then ``seconds`` with ``--latency``."""
    wrk(url, WARMUP_S, lua, latency=False, connections=1)
    return parse_wrk(wrk(url, seconds, lua, connections=1))


def run_reliq(seconds: int, work: Path) -> dict[str, dict[str, Any]]:
    lua = work / "null.lua"
    lua.write_text(LUA)
    with ExitStack() as stack:
        server = stack.enter_context(EmbeddedValkey(data_dir=work / f"valkey-{time.monotonic_ns()}"))
        r = stack.enter_context(redis.Redis.from_url(server.url))
        port = free_port()
        gateway = reliq(server.url, "gateway", "--port", str(port), "--app", "load_tests.latency_app:lat")
        stack.enter_context(running("gateway-c1", gateway, work))
        worker = ["worker", "load_tests.latency_app:lat", "--processes", "1", "--consumer", CONSUMER]
        stack.enter_context(running("worker-c1", reliq(server.url, *worker), work))
        wait_http(f"http://127.0.0.1:{port}/readyz", "gateway-c1", work)
        deadline = time.monotonic() + 60
        while not r.exists(ServiceKeys("lat").consumer(CONSUMER)):
            if time.monotonic() > deadline:
                raise TimeoutError("worker did not start")
            time.sleep(0.01)
        return {shape: wrk_c1(f"http://127.0.0.1:{port}/{shape}/lat/noop", seconds, lua) for shape in SHAPES}


def run_restate(seconds: int, anchor: Path) -> dict[str, dict[str, Any]]:
    rows = restate_wrk(anchor, {RESTATE[shape]: "null" for shape in SHAPES}, seconds, 1)
    return {shape: rows[RESTATE[shape]] for shape in SHAPES}


def compare(rounds: int, seconds: int, anchor: Path, work: Path, max_load: float) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for rnd in range(rounds):
        for system in ("reliq", "restate") if rnd % 2 == 0 else ("restate", "reliq"):
            load = calm(max_load, 30.0)
            print(f"[latency] one connection, round {rnd + 1}: {system}, load {load:.2f}", file=sys.stderr)
            shapes = run_reliq(seconds, work) if system == "reliq" else run_restate(seconds, anchor)
            runs.append({"round": rnd + 1, "system": system, "load_before": load, **shapes})
            runs[-1]["load_after"] = loadavg()
    return {"seconds": seconds, "rounds": rounds, "runs": runs, "ratios": ratios(runs)}


def ratios(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per shape: Restate / reliq for p50 and p99, reliq / Restate for req/s (above 1 = reliq
    better), each round's and the ratio of the medians over the rounds."""
    out: dict[str, dict[str, Any]] = {}
    for shape in SHAPES:
        by = {s: [r[shape] for r in runs if r["system"] == s] for s in ("reliq", "restate")}
        med = {
            s: {k: statistics.median(x[k] for x in rows) for k in ("p50_ms", "p99_ms", "rps")}
            for s, rows in by.items()
        }
        pairs = list(zip(by["reliq"], by["restate"], strict=True))
        out[shape] = {
            "median": med,
            "p50_restate_over_reliq": round(med["restate"]["p50_ms"] / med["reliq"]["p50_ms"], 2),
            "p99_restate_over_reliq": round(med["restate"]["p99_ms"] / med["reliq"]["p99_ms"], 2),
            "rps_reliq_over_restate": round(med["reliq"]["rps"] / med["restate"]["rps"], 2),
            "per_round_rps_ratio": [round(a["rps"] / b["rps"], 2) for a, b in pairs],
            "per_round_p50_ratio": [round(b["p50_ms"] / a["p50_ms"], 2) for a, b in pairs],
        }
    return out


def markdown(c1: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## One connection: reliq against Restate (`wrk -t1 -c1`, {WARMUP_S} s warm-up, {c1['seconds']} s, "
        f"{c1['rounds']} rounds alternated)",
        "",
        "| round | system | load before | call p50 ms | call p99 ms | call req/s | send p50 ms | "
        "send p99 ms | send req/s | non-2xx |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in c1["runs"]:
        call, send = r["call"], r["send"]
        lines.append(
            f"| {r['round']} | {r['system']} | {r['load_before']:.2f} | {call['p50_ms']:.2f} | "
            f"{call['p99_ms']:.2f} | {call['rps']:,.0f} | {send['p50_ms']:.2f} | {send['p99_ms']:.2f} | "
            f"{send['rps']:,.0f} | {call['non_2xx'] + send['non_2xx']} |"
        )
    lines.append("")
    for shape, q in c1["ratios"].items():
        lines.append(
            f"- {shape}, medians: Restate's p50 {q['p50_restate_over_reliq']}x reliq's, p99 "
            f"{q['p99_restate_over_reliq']}x; reliq req/s {q['rps_reliq_over_restate']}x Restate's "
            f"(per round {', '.join(f'{x}x' for x in q['per_round_rps_ratio'])})"
        )
    return lines
