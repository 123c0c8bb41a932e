"""HTTP throughput/latency of the reliq gateway against bare FastAPI baselines, with wrk.

    .venv/bin/python -m load_tests.bench_gateway --duration 8

Everything on loopback, started here as subprocesses and stopped (by pid) at the end. One
embedded Valkey (appendfsync always) serves all phases.
Each endpoint: ``wrk -t1 -c64 -d2s`` warm-up (discarded), then ``wrk -t1 -c64 -d{duration}s
--latency``, POST with a JSON body ``null``. Uvicorn: uvloop, httptools, no access log, 1 worker.

(a) bare FastAPI ``POST /noop`` (load_tests/baseline_app.py)
(b) bare FastAPI ``POST /xadd``: one awaited redis-py asyncio XADD per request
(c) reliq gateway ``POST /send/bench/noop`` at durability fsync
With ``--rounds N`` (a), (c), (c2) and (d) are measured N times, alternating, and each round's
/send and /call ratios to its own (a) are reported with their medians (the first round fills the
main table).
(c) and (c2) each start on an emptied server (FLUSHALL, the registry published again, the AOF
rewritten): the records a phase before left, and the first writes to the pages a rewrite's fork
shared, would be charged to the next phase.

(c2) a second gateway *without* ``--app`` (the workers' code), as compose and the image run it:
    ``POST /send/bench/typed`` with ``{"sku": "a", "qty": 1}``, validated against the JSON schema a
    worker published in the registry (the worker is started and stopped before any load, so
    nothing drains during the measurement, as in (c)). Before (c) and before (c2) the AOF is
    rewritten (``BGREWRITEAOF``, waited for), so that a rewrite (c)'s writes trigger is not charged
    to (c2)
(d) reliq gateway ``POST /call/bench/noop`` with one ``reliq worker`` process, started after (c2)
    (a fresh one each round, stopped at the round's end) and once it has drained the stream (c2)
    filled (that drain's rate is reported too), and the AOF rewritten after that drain
(e) end to end, after the rounds: ``POST /send/bench/noop`` while a worker runs; besides the send
    rate it reports how many invocations were *completed* per second in the same window (sent
    minus the growth of the stream, which holds exactly the entries not settled yet)

Each row also reports the CPU its server process (FastAPI's, or the gateway's) spent per request
during the measured run (``/proc/PID/stat``), and each round the ratio of /send's to FastAPI's.
With wrk's 64 connections always busy, latency is 64 / throughput and throughput is bound by that
CPU, so the p99 moves with it (docs/performance.md, session 12): a machine-independent reading of
the latency targets.

For the /send phases, Valkey's latency monitor counts the fsyncs of 5 ms or more (``LATENCY
LATEST``'s ``aof-fsync-always``): one such stall holds all 64 requests in flight, so a handful of
them set the p99 whatever the gateway does. They come from the disk (a bare ``fdatasync`` loop on
this machine's disk, without reliq, saw a 522 ms one in 8 s).

Writes load_tests/results/gateway-<timestamp>.json, gateway-latest.md and gateway-latest.png
(matplotlib from the peers venv, when bench_workers has made it); prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from load_tests.bench_scaling import cpu_s
from load_tests.bench_workers import chart
from reliq.devserver.embedded import EmbeddedValkey, free_port
from reliq.store.keys import ServiceKeys

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "load_tests" / "results"
CONNECTIONS = 64
STALL_MS = 5  # fsyncs this slow or slower are counted per phase (Valkey's latency monitor)
WARMUP_S = 2
LUA = 'wrk.method = "POST"\nwrk.body = "null"\nwrk.headers["Content-Type"] = "application/json"\n'
TYPED = LUA.replace('"null"', '\'{"sku": "a", "qty": 1}\'')
UVICORN = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--workers", "1"]
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unknown wrk duration {text!r}")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    lat = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    pct = dict(re.findall(r"^\s*(50|75|90|99)%\s+(\S+)", out, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not (lat and rps and total and "50" in pct and "99" in pct):
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    kinds = ("connect", "read", "write", "timeout")
    errors = dict(zip(kinds, map(int, sock.groups()), strict=True)) if sock else {}
    return {
        "requests": int(total.group(1)),
        "rps": float(rps.group(1)),
        "p50_ms": to_ms(pct["50"]),
        "p99_ms": to_ms(pct["99"]),
        "max_ms": to_ms(lat.group(3)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(errors.values()),
        "socket_error_detail": errors,
    }


def wrk(url: str, seconds: int, lua: Path, *, latency: bool = True, connections: int = CONNECTIONS) -> str:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(lua)]
    cmd += ["--latency", url] if latency else [url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return done.stdout


@contextmanager
def running(name: str, args: list[str], logs: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """A subprocess for the block; stopped by pid (SIGTERM, then SIGKILL) however the block ends."""
    log = logs / f"{name}.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc.pid
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def wait_http(url: str, name: str, logs: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
            raise TimeoutError(f"{name} not ready at {url}; log tail:\n{tail}")
        time.sleep(0.1)


def uvicorn(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), *UVICORN]


def reliq(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "reliq", "--redis-url", url, "--log-level", "WARNING", *args]


def wait_drained(r: redis.Redis, consumer: str, timeout: float = 300.0) -> dict[str, Any]:
    k = ServiceKeys("bench")
    deadline = time.monotonic() + timeout
    while not r.exists(k.consumer(consumer)):
        if time.monotonic() > deadline:
            raise TimeoutError("worker did not start")
        time.sleep(0.01)
    backlog, t0 = int(r.xlen(k.stream)), time.perf_counter()
    while r.xlen(k.stream) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker did not drain the stream ({r.xlen(k.stream)} left)")
        time.sleep(0.01)
    seconds = time.perf_counter() - t0
    return {"entries": backlog, "seconds": round(seconds, 2), "per_s": round(backlog / max(seconds, 1e-9))}


def wait_published(r: redis.Redis, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not r.hexists(ServiceKeys("bench").registry, "typed"):
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not publish bench's registry")
        time.sleep(0.01)


def settle_aof(r: redis.Redis, timeout: float = 60.0) -> None:
    """Rewrite the AOF now and wait for it: an automatic rewrite triggered by one phase's writes
    (at 100% growth) would otherwise land in the next phase and be charged to it. One already under
    way (a phase's writes started it) is waited for first: the server refuses a second."""
    deadline = time.monotonic() + timeout
    _rewritten(r, deadline)
    r.bgrewriteaof()
    _rewritten(r, deadline)


def _rewritten(r: redis.Redis, deadline: float) -> None:
    while True:
        info = r.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("AOF rewrite did not finish")
        time.sleep(0.05)


def fsync_stalls(r: redis.Redis) -> dict[str, Any]:
    """Valkey's own record of its ``appendfsync always`` fsyncs of ``STALL_MS`` or more since the
    last ``LATENCY RESET``: how many, the slowest, and their sum. A stall holds every request in
    flight, so a few of them set wrk's p99 whatever the gateway does (the disk's, not reliq's)."""
    for event in r.execute_command("LATENCY", "LATEST") or []:
        if event[0] in (b"aof-fsync-always", "aof-fsync-always") and len(event) >= 6:
            return {"count": int(event[5]), "max_ms": int(event[3]), "sum_ms": int(event[4])}
    return {"count": 0, "max_ms": 0, "sum_ms": 0}


def measure(
    name: str,
    url: str,
    duration: int,
    lua: Path,
    pid: int,
    r: redis.Redis | None = None,
    others: dict[str, int] | None = None,
) -> dict[str, Any]:
    """wrk's figures, and the CPU the server (process ``pid``) spent per request meanwhile; with
    ``r``, the fsync stalls Valkey recorded meanwhile (``fsync_stalls``). ``cpu_us``: CPU per
    request of the server, of wrk itself and of each of ``others`` (name: pid), e.g. the worker
    and Valkey of a ``/call``: on two shared cores every process's CPU slows the others."""
    print(f"[{name}] warm-up {WARMUP_S}s, then {duration}s: {url}", file=sys.stderr, flush=True)
    wrk(url, WARMUP_S, lua, latency=False)
    if r is not None:
        r.config_set("latency-monitor-threshold", STALL_MS)
        r.execute_command("LATENCY", "RESET")
    pids = {"server": pid, **(others or {})}
    before = {k: cpu_s([v]) for k, v in pids.items()}
    wrk_before = _children_cpu_s()  # wrk is the only child that ends meanwhile
    row = {"endpoint": name, "url": url, **parse_wrk(wrk(url, duration, lua))}
    n = max(row["requests"], 1)
    used = {k: cpu_s([v]) - before[k] for k, v in pids.items()}
    used["wrk"] = _children_cpu_s() - wrk_before
    row["cpu_us"] = {k: round(v / n * 1e6, 1) for k, v in used.items()}
    row["cpu_us_per_req"] = row["cpu_us"]["server"]
    if r is not None:
        row["fsync_stalls"] = fsync_stalls(r)
    return row


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CALL = "(d) reliq /call + 1 worker"


def ratio_row(row: list[dict[str, Any]]) -> dict[str, float]:
    """One round's (a), (c), (c2), (d): the /send and /call rates as ratios to (a), and p99s."""
    a, c, c2 = (x["rps"] for x in row[:3])
    return {
        "fastapi_rps": a,
        "send_vs_a": round(c / a, 3),
        "send_p99_ms": row[1]["p99_ms"],
        "send_noapp_vs_a": round(c2 / a, 3),
        "send_noapp_p99_ms": row[2]["p99_ms"],
        "send_cpu_vs_a": round(row[1]["cpu_us_per_req"] / max(row[0]["cpu_us_per_req"], 1e-9), 3),
        "send_stalls": row[1]["fsync_stalls"]["count"],
        "send_stall_max_ms": row[1]["fsync_stalls"]["max_ms"],
        "send_noapp_stalls": row[2]["fsync_stalls"]["count"],
        "send_noapp_stall_max_ms": row[2]["fsync_stalls"]["max_ms"],
        "fastapi_cpu_us": round(sum(row[0]["cpu_us"].values()), 1),
        "call_vs_a": round(row[3]["rps"] / a, 3),
        **{f"call_cpu_us_{k}": v for k, v in row[3]["cpu_us"].items()},
        "call_p99_ms": row[3]["p99_ms"],
        "call_stalls": row[3]["fsync_stalls"]["count"],
        "call_stall_max_ms": row[3]["fsync_stalls"]["max_ms"],
    }


def bench(duration: int, work: Path, rounds: int = 1) -> dict[str, Any]:
    lua, typed = work / "post.lua", work / "typed.lua"
    lua.write_text(LUA)
    typed.write_text(TYPED)
    results: list[dict[str, Any]] = []
    ratios: list[dict[str, float]] = []
    drain: dict[str, Any] = {}
    with ExitStack() as stack:
        server = stack.enter_context(EmbeddedValkey(data_dir=work / "valkey"))
        r = stack.enter_context(redis.Redis.from_url(server.url))
        assert server.proc is not None
        valkey_pid = server.proc.pid
        env = {**os.environ, "BENCH_REDIS_URL": server.url}
        base_port, gw_port, reg_port = free_port(), free_port(), free_port()
        publisher = ["worker", "load_tests.noop_app:bench", "--processes", "1"]
        with running("publisher", reliq(server.url, *publisher), work):
            wait_published(r)  # the registry holds bench's schemas; the worker stops before any load
        base_pid = stack.enter_context(
            running("baseline", uvicorn("load_tests.baseline_app:app", base_port), work, env)
        )
        wait_http(f"http://127.0.0.1:{base_port}/openapi.json", "baseline", work)
        gw = ["gateway", "--port", str(gw_port), "--app", "load_tests.noop_app:bench"]
        gw += ["--durability", "fsync"]
        gw_pid = stack.enter_context(running("gateway", reliq(server.url, *gw), work))
        wait_http(f"http://127.0.0.1:{gw_port}/readyz", "gateway", work)
        reg_pid = stack.enter_context(
            running("registry-gateway", reliq(server.url, "gateway", "--port", str(reg_port)), work)
        )
        wait_http(f"http://127.0.0.1:{reg_port}/readyz", "registry-gateway", work)
        base, gw_base = f"http://127.0.0.1:{base_port}", f"http://127.0.0.1:{gw_port}"
        reg_url = f"http://127.0.0.1:{reg_port}/send/bench/typed"
        trio = [
            ("(a) FastAPI /noop", f"{base}/noop", lua, base_pid),
            ("(c) reliq /send fsync", f"{gw_base}/send/bench/noop", lua, gw_pid),
            ("(c2) reliq /send fsync, no --app (registry schema)", reg_url, typed, reg_pid),
        ]
        for n in range(rounds):  # (a), (c), (c2) alternate: each ratio is taken within its round
            row = []
            for i, (name, url, script, pid) in enumerate(trio):
                if i:  # each /send phase from an empty server: one left by the phase before costs more
                    r.flushall()
                    with running("publisher", reliq(server.url, *publisher), work):
                        wait_published(r)
                settle_aof(r)
                row.append(measure(name, url, duration, script, pid, r if i else None))
            # (d) in the round too: its ratio to this round's (a), as /send's (a fresh worker and
            # consumer each round, which first drains what (c2) left; stopped before the next (a))
            consumer = f"bench-gw-{n + 1}"
            worker = ["worker", "load_tests.noop_app:bench", "--processes", "1", "--consumer", consumer]
            with running(f"worker-{n + 1}", reliq(server.url, *worker), work) as worker_pid:
                drained = wait_drained(r, consumer)
                print(f"worker drained {drained}", file=sys.stderr, flush=True)
                settle_aof(r)  # else the drain's writes start a rewrite (a fork, disk writes) in (d)
                others = {"worker": worker_pid, "valkey": valkey_pid}
                row.append(measure(CALL, f"{gw_base}/call/bench/noop", duration, lua, gw_pid, r, others))
            ratios.append({"round": n + 1, **ratio_row(row), "drain_per_s": drained["per_s"]})
            if n == 0:
                results += row
                drain = drained
        results.insert(1, measure("(b) FastAPI /xadd", f"{base}/xadd", duration, lua, base_pid))
        worker = ["worker", "load_tests.noop_app:bench", "--processes", "1", "--consumer", "bench-gw-e"]
        stack.enter_context(running("worker", reliq(server.url, *worker), work))
        wait_drained(r, "bench-gw-e")
        url = f"{gw_base}/send/bench/noop"
        print(f"[(e) reliq /send + 1 worker] warm-up {WARMUP_S}s, then {duration}s: {url}", file=sys.stderr)
        wrk(url, WARMUP_S, lua, latency=False)
        before = int(r.xlen(ServiceKeys("bench").stream))
        cpu = cpu_s([gw_pid])
        e2e = {"endpoint": "(e) reliq /send + 1 worker", "url": url, **parse_wrk(wrk(url, duration, lua))}
        e2e["cpu_us_per_req"] = round((cpu_s([gw_pid]) - cpu) / max(e2e["requests"], 1) * 1e6, 1)
        backlog = int(r.xlen(ServiceKeys("bench").stream)) - before
        e2e["completed_per_s"] = round((e2e["requests"] - e2e["non_2xx"] - backlog) / duration)
        e2e["backlog_growth"] = backlog
        results.append(e2e)
        valkey_version = str(r.info("server").get("valkey_version") or r.info("server").get("redis_version"))
    a = results[0]
    for row in results:
        for key in ("rps", "p50_ms", "p99_ms", "max_ms"):
            row[f"{key}_vs_a"] = round(row[key] / a[key], 3) if a[key] else None
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": duration,
        "warmup_s": WARMUP_S,
        "connections": CONNECTIONS,
        "threads": 1,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "wrk": wrk_version.strip(),
        "valkey": valkey_version,
        "appendfsync": "always",
        "drain_before_d": drain,
        "rounds": ratios,
        "median": {k: statistics.median(x[k] for x in ratios) for k in ratios[0] if k != "round"},
        "results": results,
    }


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# reliq gateway vs bare FastAPI ({doc['timestamp']})",
        "",
        f"wrk -t1 -c{doc['connections']} -d{doc['duration_s']}s after a {doc['warmup_s']}s warm-up; "
        f"POST body `null`; {doc['cpus']} CPUs shared by wrk, servers and Valkey {doc['valkey']} "
        f"(appendfsync always); Python {doc['python']}. Ratios (vs a) are to (a) FastAPI /noop.",
        "",
        "| endpoint | req/s | vs a | p50 ms | vs a | p99 ms | vs a | max ms | vs a | server CPU us/req "
        "| non-2xx | sock err |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['endpoint']} | {r['rps']:.0f} | {r['rps_vs_a']:.2f} | {r['p50_ms']:.2f} | "
            f"{r['p50_ms_vs_a']:.2f} | {r['p99_ms']:.2f} | {r['p99_ms_vs_a']:.2f} | {r['max_ms']:.1f} | "
            f"{r['max_ms_vs_a']:.2f} | {r['cpu_us_per_req']:.0f} | {r['non_2xx']} | {r['socket_errors']} |"
        )
    if len(doc["rounds"]) > 1:
        head = "(a), (c), (c2) and (d) alternated, one ratio per round (the table above is round 1):"
        lines += ["", head, ""]
        lines += [
            "| round | FastAPI req/s | /send vs a | p99 ms | /send no --app vs a | p99 ms "
            f"| /send CPU per request vs a | fsyncs >= {STALL_MS} ms, slowest ms: /send | no --app "
            "| /call vs a | p99 ms | fsyncs, slowest: /call | drain before (d) /s "
            "| CPU us per /call: gateway, worker, Valkey, wrk (sum) | FastAPI + wrk |"
        ]
        lines += ["|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for x in [*doc["rounds"], {"round": "median", **doc["median"]}]:
            lines.append(
                f"| {x['round']} | {x['fastapi_rps']:.0f} | {x['send_vs_a']:.2f} | {x['send_p99_ms']:.1f} | "
                f"{x['send_noapp_vs_a']:.2f} | {x['send_noapp_p99_ms']:.1f} | {x['send_cpu_vs_a']:.2f} | "
                f"{x['send_stalls']:.0f}, {x['send_stall_max_ms']:.0f} | "
                f"{x['send_noapp_stalls']:.0f}, {x['send_noapp_stall_max_ms']:.0f} | "
                f"{x['call_vs_a']:.2f} | {x['call_p99_ms']:.1f} | "
                f"{x['call_stalls']:.0f}, {x['call_stall_max_ms']:.0f} | {x['drain_per_s']:.0f} | "
                f"{_call_cpu(x)} | {x['fastapi_cpu_us']:.0f} |"
            )
    d = doc["drain_before_d"]
    lines += ["", f"Before (d) of round 1, one worker drained the {d['entries']} entries (c2) left in "]
    lines[-1] += f"{d['seconds']} s ({d['per_s']}/s)."
    for r in doc["results"]:
        if "completed_per_s" in r:
            lines += [
                "",
                f"{r['endpoint']}: {r['completed_per_s']}/s completed end to end (HTTP send -> handler "
                f"run -> result stored) while sending {r['rps']:.0f}/s; the stream grew by "
                f"{r['backlog_growth']} entries (sent but not yet run).",
            ]
    return "\n".join(lines) + "\n"


def _call_cpu(x: dict[str, Any]) -> str:
    parts = [x[f"call_cpu_us_{k}"] for k in ("server", "worker", "valkey", "wrk")]
    return ", ".join(f"{v:.0f}" for v in parts) + f" ({sum(parts):.0f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=8, help="seconds of measured load per endpoint")
    p.add_argument("--rounds", type=int, default=1, help="rounds of (a), (c), (c2) alternated; medians")
    a = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: install it (Debian/Ubuntu: apt-get install -y wrk) and rerun")
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as d:
        doc = bench(a.duration, Path(d), a.rounds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"gateway-{stamp}.json").write_text(json.dumps(doc, indent=2) + "\n")
    table = markdown(doc)
    (RESULTS / "gateway-latest.md").write_text(table)
    chart(RESULTS / f"gateway-{stamp}.json", RESULTS / "gateway-latest.png", "load_tests.peers.gateway_chart")
    print(table)


if __name__ == "__main__":
    main()
