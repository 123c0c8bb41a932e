"""Where a drained invocation's worker time goes, step by step (issue 16: profile first).

    .venv/bin/python -m load_tests.profile_steps --n 30000

Embedded Valkey (appendfsync always); N no-op invocations sent first (64 at a time); then one
``reliq worker --processes 1`` drains them while py-spy (``pip install py-spy``) samples it (250 Hz,
raw stacks). Each sample goes to the step of the innermost reliq frame in its stack:

- read: consume's reads (XREADGROUP, read.lua, the XLEN of the other levels, the idle wait)
- claim: the claim script call and its reply (consume.dispatch, the claim decoding)
- decode / encode: the payload into the handler's input type, the result into JSON (codec)
- execute: starting the run (task, context, tracing wrapper, in-flight table)
- handler: the handler's own code
- settle: the outcome's write (settle, the complete script call: XACK + XDEL inside it)
- background: leases, heartbeat, reclaim, registry, cancels, relay
- event loop: no reliq frame (uvloop and asyncio scheduling, socket reads and writes)

The shares are of the worker's samples; times per task are the shares of the worker's CPU per
drained invocation (``/proc/<pid>/stat``, from the first completion to an empty stream). On a shared
machine the CPU figure moves between runs; the shares move much less.
Writes load_tests/results/steps-<timestamp>.json; prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey
from reliq.store.keys import ServiceKeys

from .cpu_per_task import cpu_seconds, fill, until

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "load_tests" / "results"
# (file part, function part or "") -> step; the first rule that matches the innermost reliq frame
RULES: list[tuple[str, str, str]] = [
    ("noop_app.py", "", "handler"),
    ("reliq/codec.py", "decode", "decode"),
    ("reliq/codec.py", "encode", "encode"),
    ("reliq/worker/settle.py", "", "settle"),
    ("reliq/worker/decide.py", "", "settle"),
    ("reliq/worker/consume.py", "dispatch", "claim"),
    ("reliq/worker/consume.py", "", "read"),
    ("reliq/store/priority.py", "", "read"),
    ("reliq/worker/execute.py", "", "execute"),
    ("reliq/worker/traced.py", "", "execute"),
    ("reliq/worker/inflight.py", "", "execute"),
    ("reliq/worker/context.py", "", "execute"),
    ("reliq/worker/attempt.py", "", "execute"),
    ("reliq/worker/", "", "background"),
]
# the frames every sample sits under (process start, the worker's main coroutine): no step
OUTER = (
    "reliq/worker/run.py",
    "reliq/worker/supervise.py",
    "reliq/cli/",
    "reliq/__main__.py",
    "reliq/loading.py",
)
STEPS = [
    "read",
    "claim",
    "decode",
    "execute",
    "handler",
    "encode",
    "settle",
    "background",
    "event loop",
    "other",
]


def step_of(frames: list[str]) -> str:
    """The step of one sample (frames outermost first, as py-spy's raw format writes them)."""
    for frame in reversed(frames):
        func, _, where = frame.partition(" (")
        if ("reliq/" not in where and "noop_app" not in where) or any(o in where for o in OUTER):
            continue
        if "reliq/store/scripts.py" in where:  # the script call: its caller decides the step
            if "claim" in func:
                return "claim"
            if "complete" in func or "settle" in func:
                return "settle"
            continue
        for part, name, step in RULES:
            if part in where and name in func:
                return step
        return "other"
    return "event loop"


def classify(raw: Path) -> tuple[Counter[str], Counter[str]]:
    """Samples per step, and per innermost frame of the samples without a step (the loop's own)."""
    steps: Counter[str] = Counter()
    loop: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = stack.split(";")
            step = step_of(frames)
            steps[step] += int(count)
            if step == "event loop":
                loop[frames[-1]] += int(count)
    return steps, loop


async def drain(n: int, url: str, raw: Path, py_spy: str) -> dict[str, Any]:
    k = ServiceKeys("bench")
    async with Client(url) as c:
        await fill(c, n)
        cmd = [sys.executable, "-m", "reliq", "--redis-url", url, "--log-level", "WARNING", "worker"]
        proc = subprocess.Popen(  # noqa: ASYNC220
            [*cmd, "load_tests.noop_app:bench", "--consumer", "bench-1", "--processes", "1"]
        )
        spy = None
        try:
            await until(lambda: c.redis.exists(k.consumer("bench-1")))

            async def started() -> bool:
                return int(await c.redis.xlen(k.stream)) < n

            await until(started)
            spy = subprocess.Popen(  # noqa: ASYNC220
                [py_spy, "record", "-p", str(proc.pid), "-r", "250", "-f", "raw", "-o", str(raw)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            left = await c.redis.xlen(k.stream)
            t1, w1 = time.perf_counter(), cpu_seconds(proc.pid)

            async def drained() -> bool:
                return int(await c.redis.xlen(k.stream)) == 0

            await until(drained)
            t2, w2 = time.perf_counter(), cpu_seconds(proc.pid)
        finally:
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes what it has sampled and exits
                spy.wait(60)
            proc.terminate()
            proc.wait(30)
    return {"n": left, "drain_per_s": round(left / (t2 - t1)), "worker_us_per_task": (w2 - w1) / left * 1e6}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=30000)
    a = p.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy not found: pip install py-spy (it is in the test extra), then rerun")
    with tempfile.TemporaryDirectory() as d, EmbeddedValkey(data_dir=d) as server:
        raw = Path(d) / "worker.raw"
        run = asyncio.run(drain(a.n, server.url, raw, spy))
        steps, loop = classify(raw)
    total = sum(steps.values()) or 1
    per_task = run["worker_us_per_task"]
    doc = {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **run,
        "samples": total,
        "event_loop_frames": dict(loop.most_common(10)),
        "steps": {
            s: {"share": round(steps[s] / total, 3), "us_per_task": round(per_task * steps[s] / total, 1)}
            for s in STEPS
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"steps-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json").write_text(
        json.dumps(doc, indent=2) + "\n"
    )
    print(
        f"{run['n']} no-op invocations drained at {run['drain_per_s']}/s; worker {per_task:.1f} us CPU/task"
    )
    print("| step | share | us per task |\n|---|--:|--:|")
    for s in STEPS:
        print(f"| {s} | {100 * steps[s] / total:.1f}% | {per_task * steps[s] / total:.1f} |")
    print(
        "event loop, innermost frames:",
        *(f"{100 * n / total:.1f}% {f}" for f, n in loop.most_common(6)),
        sep="\n  ",
    )


if __name__ == "__main__":
    main()
