"""Tick placement cost: 1,000 schedules on one service and 3 worker processes.

    .venv/bin/python -m load_tests.bench_cron                       # ~1 minute
    .venv/bin/python -m load_tests.bench_cron --schedules 50 --duration 6    # smoke

One embedded Valkey (AOF, ``appendfsync always``); the service is ``load_tests/cron_bench_app.py``.
``--schedules`` schedules are created at run time (``Client.create_schedule``), each firing
``fire`` ``every`` ``--every`` seconds (so all of them are due at the same instant: the worst
case for the tick loop), and ``--workers`` ``reliq worker`` processes run. After a warm-up of
two periods, the server's statistics are reset (``CONFIG RESETSTAT``) and the run is measured for
``--duration`` s:

- Redis commands per tick: the ``INFO commandstats`` calls of the window (every command: the tick
  loops, the consume/claim/complete path of the tick invocations, heartbeats and the other idle
  loops; commands run inside scripts count too) divided by the ticks scheduled in the window. The
  script calls (``evalsha``) per tick are the round trips that carry the work.
- Time from the scheduled time to the handler's start (``ctx.scheduled_for`` against the
  handler's clock, same host): p50, p99, max.
- Exactly once: every (schedule, tick) of the window ran once (duplicates and gaps counted).

Writes load_tests/results/cron-<timestamp>.json and cron-latest.md; prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from load_tests.bench_gateway import RESULTS, reliq, running
from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey
from reliq.store.keys import ServiceKeys

SERVICE = "crons"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 1) if s else float("nan")


def commandstats(r: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in r.info("commandstats").items()}


async def create(url: str, n: int, every: float) -> None:
    async with Client(url) as c:
        for i in range(n):
            await c.create_schedule(SERVICE, f"s{i:04d}", "fire", every=every)


def runs(work: Path) -> list[tuple[int, float, str]]:
    out = []
    for f in work.glob("witness.*"):
        for line in f.read_text().splitlines():
            tick, started, inv = line.split()
            out.append((int(tick), float(started), inv))
    return out


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        valkey = stack.enter_context(EmbeddedValkey(data_dir=work / "valkey"))
        url = valkey.url
        r = stack.enter_context(redis.Redis.from_url(url))
        env = {**os.environ, "RELIQ_BENCH_SERVICE": SERVICE, "RELIQ_BENCH_WITNESS": str(work / "witness")}
        names = [f"cron-w{i}" for i in range(args.workers)]
        for name in names:
            cmd = reliq(url, "worker", "load_tests.cron_bench_app:app", "--consumer", name)
            stack.enter_context(running(name, cmd, work, env))
        deadline = time.monotonic() + 60
        while not all(r.exists(ServiceKeys(SERVICE).consumer(n)) for n in names):
            if time.monotonic() > deadline:
                raise TimeoutError("workers did not start: see " + str(work))
            time.sleep(0.05)
        t_create = time.perf_counter()
        asyncio.run(create(url, args.schedules, args.every))
        create_s = time.perf_counter() - t_create
        time.sleep(2 * args.every)  # warm-up: two periods of ticks
        load_before = float(Path("/proc/loadavg").read_text().split()[0])
        r.config_resetstat()
        t0 = time.time() * 1000
        time.sleep(args.duration)
        t1 = time.time() * 1000
        stats = commandstats(r)
        time.sleep(min(5.0, args.every))  # the window's last ticks finish running
        got = [(t, s, i) for t, s, i in runs(work) if t0 <= t < t1]
    step = int(args.every * 1000)
    expected = {
        (f"s{i:04d}", t)
        for i in range(args.schedules)
        for t in range(int(t0) - int(t0) % step, int(t1), step)
    }
    expected = {(n, t) for n, t in expected if t0 <= t < t1}
    ticks = len(expected)
    per_tick = Counter(i for _, _, i in got)
    late = [s - t for t, s, _ in got]
    total = sum(stats.values())
    top = sorted(stats.items(), key=lambda kv: -kv[1])[:8]
    return {
        "schedules": args.schedules,
        "workers": args.workers,
        "every_s": args.every,
        "window_s": args.duration,
        "create_s": round(create_s, 2),
        "ticks": ticks,
        "runs": len(got),
        "duplicates": sum(n - 1 for n in per_tick.values() if n > 1),
        "missing": max(0, ticks - len(per_tick)),
        "commands_per_tick": round(total / max(1, ticks), 2),
        "evalsha_per_tick": round(stats.get("evalsha", 0) / max(1, ticks), 3),
        "top_commands_per_tick": {k: round(v / max(1, ticks), 3) for k, v in top},
        "start_delay_ms": {
            "p50": pct(late, 0.50),
            "p99": pct(late, 0.99),
            "max": round(max(late), 1) if late else None,
            "mean": round(statistics.fmean(late), 1) if late else None,
        },
        "load_before": load_before,
        "cpus": os.cpu_count(),
    }


def table(res: dict[str, Any]) -> str:
    d = res["start_delay_ms"]
    rows = [
        "| schedules | workers | period | ticks in window | runs | duplicates | missing | commands/tick "
        "| evalsha/tick | start delay p50 | p99 | max |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {res['schedules']} | {res['workers']} | {res['every_s']} s | {res['ticks']} | {res['runs']} "
        f"| {res['duplicates']} | {res['missing']} | {res['commands_per_tick']} | {res['evalsha_per_tick']} "
        f"| {d['p50']} ms | {d['p99']} ms | {d['max']} ms |",
        "",
        "Commands per tick, most frequent: "
        + ", ".join(f"`{k}` {v}" for k, v in res["top_commands_per_tick"].items()),
    ]
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schedules", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--every", type=float, default=5.0, help="seconds between ticks of each schedule")
    ap.add_argument("--duration", type=float, default=30.0, help="measured window, seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="reliq-bench-cron-") as tmp:
        res = measure(args, Path(tmp))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"cron-{stamp}.json").write_text(json.dumps(res, indent=2) + "\n")
    md = f"# tick placement ({stamp}, load before {res['load_before']}, {res['cpus']} cpus)\n\n{table(res)}\n"
    (RESULTS / "cron-latest.md").write_text(md)
    print(md)
    if res["duplicates"] or res["missing"]:
        raise SystemExit("ticks ran more than once or not at all: see the table")


if __name__ == "__main__":
    main()
