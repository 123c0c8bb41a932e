"""Two checkouts' gateways against each other: durable ``POST /send`` under ``wrk -t1 -c64``, runs
alternated in pairs (A B, B A, ...) on one embedded Valkey (``appendfsync always``), so that the
machine's drift lands on both sides. The way to tell a change to the gateway from this machine's
noise (one run's rate moves 20-40% between identical runs).

    PYTHONPATH=$PWD python -m load_tests.ab_gateway --a /tmp/base --b . --pairs 8 --duration 5

``--a``/``--b``: checkouts of reliq (``git worktree add /tmp/base <rev>``); each gateway runs from
its own with ``PYTHONPATH`` set to it. ``--call``: ``POST /call`` of the no-op instead, each run
with one ``reliq worker`` of the same checkout, started for that run and stopped after it, so
the other side's worker never takes its entries. Each run has its 2 s warm-up. Prints each run
(requests/s, p50, p99, the gateway's CPU per request, Valkey's fsyncs of 5 ms or more) and the
medians, and the ratio B/A of each pair.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis

from load_tests import bench_gateway as bg
from reliq.devserver.embedded import EmbeddedValkey, free_port


def run(
    url: str, pid: int, r: redis.Redis, lua: Path, seconds: int, worker: list[str] | None
) -> dict[str, Any]:
    """One run from an empty server (``bench_gateway.measure``: a warm-up, then wrk's figures, CPU
    per request and fsync stalls); with ``worker`` (a command), that worker runs throughout."""
    r.flushall()
    bg.settle_aof(r)
    with ExitStack() as stack:
        others: dict[str, int] = {}
        if worker is not None:
            env = {**os.environ, "PYTHONPATH": str(bg.ROOT)}
            others["worker"] = stack.enter_context(
                bg.running("worker", worker, Path(tempfile.gettempdir()), env)
            )
        return bg.measure(str(bg.ROOT), url, seconds, lua, pid, r, others)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", type=Path, required=True, help="checkout A (the baseline)")
    p.add_argument("--b", type=Path, required=True, help="checkout B")
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--duration", type=int, default=5, help="seconds per run")
    p.add_argument("--call", action="store_true", help="POST /call with a worker per run, not /send")
    a = p.parse_args()
    sides = [a.a.resolve(), a.b.resolve()]
    runs: list[list[dict[str, Any]]] = [[], []]
    with tempfile.TemporaryDirectory(prefix="ab-gateway-") as d, ExitStack() as stack:
        work = Path(d)
        lua = work / "post.lua"
        lua.write_text(bg.LUA)
        server = stack.enter_context(EmbeddedValkey(data_dir=work / "valkey"))
        r = stack.enter_context(redis.Redis.from_url(server.url))
        gateways = []
        for i, root in enumerate(sides):
            port = free_port()
            args = bg.reliq(server.url, "gateway", "--port", str(port), "--app", "load_tests.noop_app:bench")
            bg.ROOT = root  # ``running`` starts the process in its checkout (``-m`` puts the cwd first)
            pid = stack.enter_context(
                bg.running(
                    f"gateway-{'ab'[i]}",
                    [*args, "--durability", "fsync"],
                    work,
                    {**os.environ, "PYTHONPATH": str(root)},
                )
            )
            bg.wait_http(f"http://127.0.0.1:{port}/readyz", f"gateway-{'ab'[i]}", work)
            gateways.append((pid, f"http://127.0.0.1:{port}/{'call' if a.call else 'send'}/bench/noop"))
        workers = [
            bg.reliq(server.url, "worker", "load_tests.noop_app:bench", "--processes", "1")
            if a.call
            else None
            for _ in sides
        ]
        for n in range(a.pairs):
            for i in (0, 1) if n % 2 == 0 else (1, 0):
                pid, url = gateways[i]
                bg.ROOT = sides[i]  # the worker of the same checkout
                row = run(url, pid, r, lua, a.duration, workers[i])
                runs[i].append(row)
                stalls = row["fsync_stalls"]
                print(
                    f"{'AB'[i]} {time.strftime('%H:%M:%S')} {row['rps']:.0f} req/s p50 {row['p50_ms']} "
                    f"p99 {row['p99_ms']} ms, CPU us/req {row['cpu_us']}, "
                    f"fsyncs >= {bg.STALL_MS} ms: {stalls['count']} (slowest {stalls['max_ms']} ms)",
                    flush=True,
                )
    for i, side in enumerate(sides):
        rows = runs[i]
        print(
            f"{'AB'[i]} {side}: median {statistics.median(x['rps'] for x in rows):.0f} req/s, "
            f"p99 {statistics.median(x['p99_ms'] for x in rows):.2f} ms, "
            f"{statistics.median(x['cpu_us_per_req'] for x in rows):.1f} us/req"
        )
    ratios = [round(b["rps"] / x["rps"], 2) for x, b in zip(runs[0], runs[1], strict=True)]
    print(f"B/A per pair: {ratios}, median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    if subprocess.run(["which", "wrk"], capture_output=True).returncode:
        sys.exit("wrk not found: install it (Debian/Ubuntu: apt-get install -y wrk) and rerun")
    main()
