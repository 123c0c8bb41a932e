"""Slow and huge-header clients against a real gateway: its RSS, and the p99 of normal requests,
quiet and under attack (issue 12, finding 4).

    .venv/bin/python -m load_tests.slow_clients --duration 10

Each gateway (``edge``: ``reliq gateway`` as shipped; ``stock``: the same app under plain uvicorn
httptools, as before the edge limits) runs against one embedded Valkey (appendfsync always), with
``load_tests.noop_app:bench``, durability fsync. Two phases each, ``--duration`` seconds:

- quiet: ``wrk -t1 -c16 --latency`` POSTs ``/send/bench/noop`` (the durable hot path);
- attack: the same wrk load while ``--huge`` connections each send a ``--huge-mb`` MB header
  field as fast as they can, then hold, and ``--slow`` connections trickle their head a byte a
  second; a connection the server closes is opened again after 0.5 s.

The gateway's RSS (``/proc/PID/status``) is sampled every 0.1 s. Prints a markdown table and
writes load_tests/results/slow-clients-<timestamp>.json. "answers": what the attack connections
got before the server closed them (``none``: reset while still sending, before the answer was read).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from load_tests.bench_gateway import LUA, RESULTS, parse_wrk, reliq, running, wait_http
from reliq.devserver.embedded import EmbeddedValkey, free_port

MB = 1 << 20
HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
REOPEN_S = 0.5


@dataclass
class Attack:
    port: int
    huge_bytes: int
    opened: int = 0
    closed_by_server: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    slow_lifetimes: list[float] = field(default_factory=list)

    async def connection(self, huge: bool, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(REOPEN_S)
                continue
            self.opened += 1
            t0 = time.monotonic()
            send = self._huge(writer) if huge else self._slow(writer, stop)
            sender = asyncio.ensure_future(send)
            try:
                answer = await reader.read(200)  # the server's answer, or b"" once it closed
            except OSError:
                answer = b""
            if not stop.is_set():
                self.closed_by_server += 1
                status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "none"
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if not huge:
                    self.slow_lifetimes.append(time.monotonic() - t0)
            sender.cancel()
            writer.close()
            await asyncio.sleep(REOPEN_S)

    async def _huge(self, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError):
            writer.write(HEAD + b"X-Big: ")
            chunk = b"a" * (64 << 10)
            for _ in range(self.huge_bytes // len(chunk)):
                writer.write(chunk)
                await writer.drain()
            await asyncio.Event().wait()  # then hold the connection

    async def _slow(self, writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
        with suppress(OSError):
            writer.write(HEAD + b"X-Slow: ")
            while not stop.is_set():
                writer.write(b"a")
                await writer.drain()
                await asyncio.sleep(1)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


async def phase(
    url: str, pid: int, seconds: int, lua: Path, attack: Attack | None, n: tuple[int, int]
) -> dict[str, Any]:
    stop = asyncio.Event()
    conns = (
        [asyncio.ensure_future(attack.connection(i < n[0], stop)) for i in range(sum(n))] if attack else []
    )
    start, cpu0, own0, t0 = rss_mb(pid), cpu_s(pid), cpu_s(os.getpid()), time.monotonic()
    samples = [start]
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(lua), "--latency", url]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    out = asyncio.ensure_future(proc.communicate())
    while not out.done():
        samples.append(rss_mb(pid))
        await asyncio.sleep(0.1)
    stop.set()
    for c in conns:
        c.cancel()
    await asyncio.gather(*conns, return_exceptions=True)
    took = time.monotonic() - t0
    row = {
        "rss_start_mb": round(start, 1),
        "rss_max_mb": round(max(samples), 1),
        "gateway_cpu": round((cpu_s(pid) - cpu0) / took, 2),
        "attacker_cpu": round((cpu_s(os.getpid()) - own0) / took, 2),
    }
    row |= parse_wrk(out.result()[0].decode())
    if attack:
        lifetimes = attack.slow_lifetimes
        row |= {
            "attack_opened": attack.opened,
            "attack_closed_by_server": attack.closed_by_server,
            "attack_statuses": attack.statuses,
            "slow_max_lifetime_s": round(max(lifetimes), 1) if lifetimes else None,
        }
    return row


def gateway(kind: str, redis_url: str, port: int) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "RELIQ_REDIS_URL": redis_url, "RELIQ_APP": "load_tests.noop_app:bench"}
    if kind == "edge":
        return reliq(redis_url, "gateway", "--port", str(port), "--app", "load_tests.noop_app:bench"), env
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "gateway.app:create_app", "--port", str(port)]
    return [*uvicorn, "--loop", "uvloop", "--http", "httptools", "--no-access-log"], env


def measure(
    kinds: list[str], seconds: int, huge: int, slow: int, huge_mb: int, work: Path
) -> list[dict[str, Any]]:
    lua = work / "post.lua"
    lua.write_text(LUA)
    rows: list[dict[str, Any]] = []
    with EmbeddedValkey(data_dir=work / "valkey") as server:
        for kind in kinds:
            with ExitStack() as stack:
                port = free_port()
                args, env = gateway(kind, server.url, port)
                pid = stack.enter_context(running(kind, args, work, env))
                wait_http(f"http://127.0.0.1:{port}/readyz", kind, work)
                url = f"http://127.0.0.1:{port}/send/bench/noop"
                for name in ("quiet", "attack"):
                    print(f"[{kind} {name}] {seconds}s", file=sys.stderr, flush=True)
                    attack = Attack(port, huge_mb * MB) if name == "attack" else None
                    row = asyncio.run(phase(url, pid, seconds, lua, attack, (huge, slow)))
                    rows.append({"gateway": kind, "phase": name, **row})
    return rows


def markdown(doc: dict[str, Any]) -> str:
    a = doc["attack"]
    lines = [
        f"# Slow and huge-header clients ({doc['timestamp']})",
        "",
        f"wrk -t1 -c16 -d{doc['duration_s']}s POST /send/bench/noop (fsync) on {doc['cpus']} CPUs; attack: "
        f"{a['huge']} connections sending a {a['huge_mb']} MB header field, {a['slow']} trickling "
        "a byte a second, each reopened 0.5 s after the server closes it.",
        "",
        "| gateway | phase | req/s | p50 ms | p99 ms | non-2xx | RSS start MB | RSS max MB | gateway CPU | "
        "attacker CPU | attack opened | closed by server | answers | slowest slow conn s |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['gateway']} | {r['phase']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['non_2xx']} | {r['rss_start_mb']} | {r['rss_max_mb']} | {r['gateway_cpu']:.0%} | "
            f"{r['attacker_cpu']:.0%} | "
            f"{r.get('attack_opened', '')} | "
            f"{r.get('attack_closed_by_server', '')} | {r.get('attack_statuses', '')} | "
            f"{r.get('slow_max_lifetime_s') or ''} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per phase")
    p.add_argument("--huge", type=int, default=100, help="connections sending a huge header")
    p.add_argument("--slow", type=int, default=100, help="connections trickling their head")
    p.add_argument("--huge-mb", type=int, default=8, help="MB of header each huge connection sends")
    p.add_argument("--gateway", choices=("edge", "stock", "both"), default="both")
    a = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: install it (Debian/Ubuntu: apt-get install -y wrk) and rerun")
    kinds = ["edge", "stock"] if a.gateway == "both" else [a.gateway]
    with tempfile.TemporaryDirectory(prefix="slow-clients-") as d:
        rows = measure(kinds, a.duration, a.huge, a.slow, a.huge_mb, Path(d))
    doc = {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": a.duration,
        "cpus": os.cpu_count(),
        "attack": {"huge": a.huge, "slow": a.slow, "huge_mb": a.huge_mb},
        "results": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"slow-clients-{stamp}.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(markdown(doc))


if __name__ == "__main__":
    main()
