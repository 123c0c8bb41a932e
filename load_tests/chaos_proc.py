"""The system under test as real processes owned by the harness: one embedded Valkey (AOF,
``appendfsync always``, restartable from its AOF on the same port and data dir), gateways and
workers. A supervisor restarts any gateway or worker that dies, like a process manager would,
and records every death with whether a nemesis caused it.

Every child runs in its own session (Ctrl-C reaches the harness only) and gets
``PR_SET_PDEATHSIG=SIGKILL``, so even a SIGKILLed harness leaves nothing behind; ``close()``
kills the rest by pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec

from reliq.devserver.allocator import server_env
from reliq.devserver.embedded import free_port, server_args

ROOT = Path(__file__).resolve().parents[1]
APP = "load_tests.chaos_app:app"


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL me when the harness dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ProcEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One line of procs.jsonl: a start or a death of a process of the system under test."""

    t: float
    role: str
    slot: int
    pid: int
    event: str  # start | exit
    returncode: int | None = None
    expected: bool = True  # exits: caused by a nemesis (or the harness) rather than by reliq
    reason: str = ""  # an exit reliq documents: "redis down at start" (a gateway's one-line refusal)


@dataclass
class Slot:
    role: str  # valkey | gateway | worker
    index: int
    proc: subprocess.Popen[bytes] | None = None
    held: bool = False  # a nemesis keeps it down (or controls its restart): no auto-restart
    expect_exit: bool = False  # the next exit was caused on purpose
    failpoints: str = ""
    ready: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one nemesis at a time per slot


@dataclass
class System:
    """Start, kill, stop and restart the processes; ``supervise()`` restarts dead ones."""

    workdir: Path
    n_gateways: int = 1
    n_workers: int = 2
    visibility: float = 3.0
    concurrency: int = 50
    use_proxy: bool = False
    valkey_port: int = field(default_factory=free_port)
    proxy_url: str | None = None
    events: list[ProcEvent] = field(default_factory=list)
    valkey: Slot = field(default_factory=lambda: Slot("valkey", 0))
    gateways: list[Slot] = field(default_factory=list)
    workers: list[Slot] = field(default_factory=list)
    gateway_ports: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gateways = [Slot("gateway", i) for i in range(self.n_gateways)]
        self.workers = [Slot("worker", i) for i in range(self.n_workers)]
        self.gateway_ports = [free_port() for _ in range(self.n_gateways)]
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)

    # -- addresses ------------------------------------------------------------------------------
    @property
    def direct_url(self) -> str:
        return f"redis://127.0.0.1:{self.valkey_port}/0"

    @property
    def reliq_url(self) -> str:
        """Where gateways and workers connect: through the fault proxy when there is one."""
        return self.proxy_url or self.direct_url

    @property
    def witness_path(self) -> Path:
        return self.workdir / "witness.db"

    def gateway_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.gateway_ports[i]}"

    # -- processes ------------------------------------------------------------------------------
    def _spawn(self, slot: Slot, cmd: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.workdir / "logs" / f"{slot.role}-{slot.index}.log", "ab")  # noqa: SIM115
        try:
            slot.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # Popen runs on the main thread only
            )
        finally:
            log.close()
        slot.ready = False
        slot.expect_exit = False
        self.events.append(
            ProcEvent(t=time.time(), role=slot.role, slot=slot.index, pid=slot.proc.pid, event="start")
        )

    def start_valkey(self) -> None:
        data = self.workdir / "valkey"
        data.mkdir(exist_ok=True)
        args = server_args(self.valkey_port, data, appendfsync="always")
        self._spawn(self.valkey, args, server_env())  # jemalloc preloaded, as the embedded server

    def start_gateway(self, i: int, failpoints: str = "") -> None:
        slot = self.gateways[i]
        slot.failpoints = failpoints
        cmd = [sys.executable, "-m", "reliq", "--log-level", "WARNING", "gateway"]
        cmd += ["--redis-url", self.reliq_url, "--port", str(self.gateway_ports[i]), "--app", APP]
        self._spawn(slot, cmd, self._env(RELIQ_FAILPOINTS=failpoints))

    def start_worker(self, i: int) -> None:
        cmd = [sys.executable, "-m", "reliq", "--log-level", "WARNING", "worker", APP, "--processes", "1"]
        cmd += ["--redis-url", self.reliq_url, "--visibility-timeout", str(self.visibility)]
        cmd += ["--concurrency", str(self.concurrency), "--shutdown-grace", "2"]
        if i % 2 == 0:  # a stable name: the restarted worker re-reads its own pending list first
            cmd += ["--consumer", f"chaos-w{i}"]
        self._spawn(self.workers[i], cmd, self._env())

    def _env(self, **extra: str) -> dict[str, str]:
        return {"RELIQ_CHAOS_WITNESS": str(self.witness_path), "RELIQ_FAILPOINTS": "", **extra}

    def signal(self, slot: Slot, sig: signal.Signals) -> int | None:
        """Send ``sig`` to the slot's process; SIGKILL marks the exit as expected. Returns the pid."""
        p = slot.proc
        if p is None or p.poll() is not None:
            return None
        if sig == signal.SIGKILL:
            slot.expect_exit = True
        os.kill(p.pid, sig)
        return p.pid

    def kill(self, slot: Slot) -> int | None:
        pid = self.signal(slot, signal.SIGKILL)
        if slot.proc is not None:
            slot.proc.wait()
            self._reap(slot)
        return pid

    def _reap(self, slot: Slot) -> None:
        p = slot.proc
        if p is None or p.returncode is None:
            return
        reason = self._refused_start(slot) if not slot.expect_exit and p.returncode == 1 else ""
        ev = ProcEvent(
            t=time.time(),
            role=slot.role,
            slot=slot.index,
            pid=p.pid,
            event="exit",
            returncode=p.returncode,
            expected=slot.expect_exit or bool(reason),
            reason=reason,
        )
        self.events.append(ev)
        slot.proc = None

    def _refused_start(self, slot: Slot) -> str:
        """A gateway started while Valkey was down (or unreachable through the proxy) ends with
        one documented line and exit 1 (docs/operations.md): the supervisor's restart is the
        answer, not a reliq failure."""
        if slot.role != "gateway":
            return ""
        log = self.workdir / "logs" / f"{slot.role}-{slot.index}.log"
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - 4096))
            lines = f.read().decode(errors="replace").strip().splitlines()
        last = lines[-1] if lines else ""
        refused = last.startswith("reliq gateway: Redis at ") and "is not reachable" in last
        return "redis down at start" if refused else ""

    def restart(self, slot: Slot) -> None:
        if slot.proc is not None and slot.proc.poll() is None:
            return  # still running: never two processes in one slot (one port, one name)
        self._reap(slot)
        if slot.role == "valkey":
            self.start_valkey()
        elif slot.role == "gateway":
            self.start_gateway(slot.index)
        else:
            self.start_worker(slot.index)

    # -- supervision ----------------------------------------------------------------------------
    async def supervise(self, stop: asyncio.Event, period: float = 0.2) -> None:
        """Restart dead gateways/workers (and an unexpectedly dead Valkey) until ``stop``;
        poll each gateway's /readyz until ready, as a load balancer would (it re-verifies the
        server's durability, which a gateway started during a Valkey outage could not do)."""
        async with httpx.AsyncClient(timeout=1.0) as http:
            while not stop.is_set():
                self.restart_dead()
                for slot in self.gateways:
                    if slot.proc is not None and not slot.ready:
                        try:
                            r = await http.get(self.gateway_url(slot.index) + "/readyz")
                            slot.ready = r.status_code == 200
                        except httpx.HTTPError:
                            pass
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), period)

    def restart_dead(self) -> None:
        for slot in [self.valkey, *self.gateways, *self.workers]:
            if slot.proc is not None and slot.proc.poll() is not None:
                failpoint_death = bool(slot.failpoints) and slot.proc.returncode == 137
                if failpoint_death:
                    slot.expect_exit, slot.failpoints = True, ""
                self._reap(slot)
            if slot.proc is None and not slot.held:
                self.restart(slot)

    def worker_pids(self) -> list[int]:
        return [s.proc.pid for s in self.workers if s.proc is not None]

    def close(self) -> None:
        """Kill every child by pid (SIGCONT first: a stopped process must not linger)."""
        for slot in [*self.workers, *self.gateways, self.valkey]:
            p = slot.proc
            if p is not None and p.poll() is None:
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.kill(p.pid, sig)
                    except ProcessLookupError:
                        break
                slot.expect_exit = True
                p.wait()
            self._reap(slot)


async def wait_ping(url: str, timeout: float) -> float:
    """Poll PING until Valkey answers (it answers LOADING while replaying its AOF); seconds taken."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    t0 = time.monotonic()
    r = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        pause = 0.01
        while True:
            try:
                if await r.ping():
                    return time.monotonic() - t0
            except (RedisError, OSError):
                pass
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"valkey at {url} not ready after {timeout} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)
    finally:
        await r.aclose()
