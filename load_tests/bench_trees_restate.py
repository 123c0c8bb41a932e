"""A tree of two over HTTP, reliq against Restate on the same machine: ``POST`` a call of a parent
handler that calls a child handler and returns, answered with the result.

    .venv/bin/python -m load_tests.bench_trees_restate                 # 2 rounds, ~2 minutes
    .venv/bin/python -m load_tests.bench_trees_restate --systems reliq # without Restate

Both sides: ``wrk -t1 -c64``, a 2 s warm-up (discarded), then ``--duration`` s with ``--latency``,
POST body ``1``; the systems alternate (reliq first in odd rounds, Restate first in even ones),
each on a fresh start, and the 1-min load average is recorded before each run.

- reliq: one embedded Valkey (AOF, ``appendfsync always``), one gateway process at durability
  ``fsync`` (the default), one ``reliq worker`` process with its defaults (``--concurrency 100``;
  a suspended parent holds no slot), ``POST /call/trees/parent`` (``load_tests/tree_app.py``).
  Afterwards the parents' records are read: how many there are, in which state, and how many
  suspensions they went through.
- Restate: restate-server and its Python SDK endpoint started and stopped by the anchor scripts
  (``setup.sh`` once, then ``start.sh``, ``bench.sh`` with ``ENDPOINTS="bench/parent=1"``,
  ``stop.sh``), found in ``--restate-dir`` (``$RESTATE_ANCHOR``); they are not part of reliq.
  ``POST /bench/parent`` through Restate's ingress; ``bench.parent`` calls ``bench.child`` with
  ``ctx.service_call``. Its ack is a RocksDB write fsynced per batch.

Writes load_tests/results/trees-restate-<timestamp>.json and trees-restate-latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from load_tests.bench_gateway import RESULTS, parse_wrk, reliq, running, wait_http, wrk
from load_tests.bench_trees import loadavg
from reliq.devserver.embedded import EmbeddedValkey, free_port
from reliq.store.keys import ServiceKeys

WARMUP_S = 2
LUA = 'wrk.method = "POST"\nwrk.body = "1"\nwrk.headers["Content-Type"] = "application/json"\n'
ANCHOR = Path(os.environ.get("RESTATE_ANCHOR", "/work/shared/research/restate"))


def calm(max_load: float, patience: float) -> float:
    """Wait (up to ``patience`` s) for the 1-min load average to fall below ``max_load``."""
    deadline = time.monotonic() + patience
    while loadavg() >= max_load and time.monotonic() < deadline:
        time.sleep(5)
    return loadavg()


def tally(r: redis.Redis, handler: str) -> dict[str, Any]:
    """States and suspensions of every record of ``handler`` in the service ``trees``."""
    k = ServiceKeys("trees")
    states: dict[str, int] = {}
    suspensions = count = 0
    keys = list(r.scan_iter(match=k.inv("*"), count=1000))
    for i in range(0, len(keys), 1000):
        pipe = r.pipeline(transaction=False)
        for key in keys[i : i + 1000]:
            pipe.hmget(key, "handler", "state", "susp")
        for h, state, susp in pipe.execute():
            if h is not None and h.decode() == handler:
                count += 1
                states[state.decode()] = states.get(state.decode(), 0) + 1
                suspensions += int(susp or 0)
    return {
        "parents": count,
        "states": states,
        "suspensions_per_parent": round(suspensions / max(1, count), 3),
    }


def run_reliq(duration: int, work: Path, worker_args: list[str]) -> dict[str, Any]:
    lua = work / "post1.lua"
    lua.write_text(LUA)
    with ExitStack() as stack:
        server = stack.enter_context(EmbeddedValkey(data_dir=work / f"valkey-{time.monotonic_ns()}"))
        r = stack.enter_context(redis.Redis.from_url(server.url))
        port = free_port()
        gw = ["gateway", "--port", str(port), "--app", "load_tests.tree_app:trees", "--durability", "fsync"]
        stack.enter_context(running("gateway", reliq(server.url, *gw), work))
        worker = [
            "worker",
            "load_tests.tree_app:trees",
            "--processes",
            "1",
            "--consumer",
            "trees-http",
            *worker_args,
        ]
        stack.enter_context(running("worker", reliq(server.url, *worker), work))
        wait_http(f"http://127.0.0.1:{port}/readyz", "gateway", work)
        deadline = time.monotonic() + 60
        while not r.exists(ServiceKeys("trees").consumer("trees-http")):
            if time.monotonic() > deadline:
                raise TimeoutError("worker did not start")
            time.sleep(0.01)
        url = f"http://127.0.0.1:{port}/call/trees/parent"
        wrk(url, WARMUP_S, lua, latency=False)
        row = {"system": "reliq", "url": url, **parse_wrk(wrk(url, duration, lua))}
        row.update(tally(r, "parent"))
    return row


def anchor_missing(anchor: Path) -> str | None:
    """Why the Restate anchor cannot run here (its scripts, or ``setup.sh`` not run), or None."""
    if not (anchor / "start.sh").exists():
        return f"no Restate anchor scripts in {anchor} (--restate-dir)"
    work = Path(os.environ.get("RESTATE_WORK", "/tmp/restate-anchor"))
    server = work / "node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"
    if not (server.exists() and (work / "venv/bin/hypercorn").exists()):
        return f"the Restate anchor is not set up in {work} (run {anchor / 'setup.sh'} once)"
    return None


def restate_wrk(
    anchor: Path, endpoints: dict[str, str], duration: int, conns: int
) -> dict[str, dict[str, Any]]:
    """One fresh start of the anchor; ``bench.sh`` runs each endpoint (path -> POST body) in turn
    (a 2 s warm-up, then ``duration`` s of ``wrk -t1 -c<conns> --latency``); parsed wrk output by
    path. Put a ``/send`` last: Restate works through a send burst's backlog before new calls."""
    env = {
        **os.environ,
        "ENDPOINTS": " ".join(f"{path}={body}" for path, body in endpoints.items()),
        "DUR": f"{duration}s",
        "WARM": f"{WARMUP_S}s",
        "CONNS": str(conns),
        "THREADS": "1",
    }
    timeout = 60 + len(endpoints) * (duration + WARMUP_S + 30)
    try:
        subprocess.run([str(anchor / "start.sh")], env=env, check=True, capture_output=True, timeout=120)
        out = subprocess.run(
            [str(anchor / "bench.sh")], env=env, check=True, capture_output=True, text=True, timeout=timeout
        ).stdout
    finally:
        subprocess.run([str(anchor / "stop.sh")], env=env, capture_output=True, timeout=60)
    raw = re.search(r"raw wrk output: (\S+)", out)
    if raw is None:
        raise RuntimeError(f"bench.sh printed no output directory:\n{out}")
    return {
        path: {
            "raw": raw.group(1),
            **parse_wrk((Path(raw.group(1)) / f"{path.replace('/', '_')}.txt").read_text()),
        }
        for path in endpoints
    }


def run_restate(duration: int, anchor: Path) -> dict[str, Any]:
    row = restate_wrk(anchor, {"bench/parent": "1"}, duration, 64)["bench/parent"]
    return {"system": "restate", "url": "/bench/parent", **row}


def markdown(doc: dict[str, Any]) -> str:
    rows = doc["runs"]
    lines = [
        f"# A tree of two over HTTP: reliq vs Restate ({doc['timestamp']})",
        "",
        f"wrk -t1 -c64, {WARMUP_S} s warm-up, {doc['duration_s']} s measured, POST body `1`; systems "
        f"alternated, {doc['rounds']} rounds; worker args: {doc['worker_args'] or '(defaults)'}.",
        "",
        "| round | system | load before | req/s | p50 ms | p99 ms | non-2xx | sock err | parents | "
        "suspensions/parent |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['round']} | {r['system']} | {r['load_before']:.2f} | {r['rps']:,.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['non_2xx']} | {r['socket_errors']} | "
            f"{r.get('parents', '')} | {r.get('suspensions_per_parent', '')} |"
        )
    med = {
        s: statistics.median(r["rps"] for r in rows if r["system"] == s) for s in {r["system"] for r in rows}
    }
    lines += ["", "Median req/s: " + ", ".join(f"{s} {v:,.0f}" for s, v in sorted(med.items()))]
    if "reliq" in med and "restate" in med:
        lines[-1] += f"; reliq / Restate = {med['reliq'] / med['restate']:.2f}x"
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--systems", default="reliq,restate")
    p.add_argument("--restate-dir", type=Path, default=ANCHOR, help="the anchor scripts (setup.sh run once)")
    p.add_argument("--max-load", type=float, default=1.0, help="wait for a 1-min load below this")
    p.add_argument("--patience", type=float, default=60.0, help="seconds to wait for it, per run")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("worker_args", nargs="*", help="extra `reliq worker` options, after --")
    a = p.parse_args()
    systems = a.systems.split(",")
    if "restate" in systems and (why := anchor_missing(a.restate_dir)) is not None:
        print(f"{why}: reliq only", file=sys.stderr)
        systems.remove("restate")
    doc: dict[str, Any] = {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": a.duration,
        "rounds": a.rounds,
        "worker_args": a.worker_args,
        "cpus": os.cpu_count(),
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-trees-http-") as d:
        for rnd in range(a.rounds):
            for system in systems if rnd % 2 == 0 else systems[::-1]:
                load = calm(a.max_load, a.patience)
                print(f"[round {rnd + 1}] {system}, load {load:.2f}", file=sys.stderr, flush=True)
                if system == "reliq":
                    row = run_reliq(a.duration, Path(d), a.worker_args)
                else:
                    row = run_restate(a.duration, a.restate_dir)
                row.update({"round": rnd + 1, "load_before": load, "load_after": loadavg()})
                print(f"  {row['rps']:.0f} req/s, p99 {row['p99_ms']:.1f} ms", file=sys.stderr, flush=True)
                doc["runs"].append(row)
    table = markdown(doc)
    if not a.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = doc["timestamp"].replace("-", "").replace(":", "")
        (RESULTS / f"trees-restate-{stamp}.json").write_text(json.dumps(doc, indent=1) + "\n")
        (RESULTS / "trees-restate-latest.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
