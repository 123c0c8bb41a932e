"""``reliq worker --processes N``: one supervisor process that keeps N worker processes running.

A worker is one asyncio loop, so it uses one core; N processes use N. The supervisor runs no
handler and never imports the application beyond the check the CLI makes first. Each child is
``python -m reliq worker APP --processes 1`` with the same options (``child_command``), so a child
is exactly a worker started by hand: its own consumer name (``host-pid-rand``, or
``CONSUMER-<slot>`` when ``--consumer`` is given), its own connections, its own heartbeat.

- **A dead child is replaced.** Its pending entries are reclaimed by the live workers after the
  visibility timeout, as for any crashed worker (a restarted child with a stable consumer name
  also finds them in its own pending list).
- **Signals are forwarded.** SIGTERM and SIGINT go to every child as they came; SIGHUP stops
  like SIGTERM (as ``reliq dev`` does). The children drain within their shutdown grace; a child
  still alive ``grace + 10`` s later is SIGKILLed; then the supervisor exits 0. Children run in
  their own session (a Ctrl-C at the terminal reaches the supervisor only, which forwards it once)
  and get SIGTERM if the supervisor itself dies (Linux ``PR_SET_PDEATHSIG``).
- **A crash loop ends the run.** A child that exits within ``start_window`` seconds of its start
  counts as a failed start; ``max_failed_starts`` in a row in one slot stop every child and the
  supervisor exits 1 with one line (restarting would only spin). Pauses between restarts back
  off from 0.1 s to 5 s; a child that ran longer than ``start_window`` resets its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from reliq.backoff import Backoff
from reliq.worker.config import WorkerConfig

log = logging.getLogger("reliq.worker.supervise")
SLOT_ENV = "RELIQ_WORKER_SLOT"  # set in each child: its slot number, 0..N-1
PROCESSES_ENV = "RELIQ_PROCESSES"  # the default of --processes (else the number of usable cores)
KILL_MARGIN = 10.0  # seconds past the shutdown grace before a child that is still alive is SIGKILLed


class CrashLoop(Exception):
    """Worker processes keep exiting right after they start."""


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota
    (a container limited to ``--cpus 2`` on a 64-core host gets 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def default_processes() -> int:
    """``RELIQ_PROCESSES`` if set, else ``usable_cores()``."""
    raw = os.environ.get(PROCESSES_ENV, "").strip()
    return int(raw) if raw else usable_cores()


def child_command(
    redis_url: str, app_spec: str, config: WorkerConfig, slot: int, logging_args: tuple[str, ...] = ()
) -> list[str]:
    """The command line of worker process ``slot``: every option of ``reliq worker`` that
    ``config`` carries, ``--processes 1``, and a consumer name of its own."""
    cmd = [sys.executable, "-m", "reliq", "--redis-url", redis_url, *logging_args, "worker", app_spec]
    cmd += ["--processes", "1"]
    if config.concurrency is not None:
        cmd += ["--concurrency", str(config.concurrency)]
    if config.batch is not None:
        cmd += ["--batch", str(config.batch)]
    cmd += ["--readers", str(config.readers), "--min-concurrency", str(config.min_concurrency)]
    cmd += ["--max-concurrency", str(config.max_concurrency)]
    cmd += ["--visibility-timeout", repr(config.visibility_timeout)]
    cmd += ["--shutdown-grace", repr(config.shutdown_grace)]
    cmd += ["--heartbeat-interval", repr(config.heartbeat_interval)]
    cmd += ["--retention", repr(config.retention), "--suspend-after", repr(config.suspend_after)]
    if config.partitions is not None:
        cmd += ["--partitions", ",".join(str(p) for p in sorted(config.partitions))]
    if config.consumer:  # a stable name stays stable per slot, and distinct
        cmd += ["--consumer", f"{config.consumer}-{slot}"]
    return cmd


def _die_with_parent(parent: int) -> Callable[[], None]:
    def setup() -> None:  # in the child, before exec
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before prctl: do not run orphaned
            os._exit(1)

    return setup


class Supervisor:
    """Keeps ``processes`` children of ``command(slot)`` running until a signal or a crash loop.

    >>> status = await Supervisor(lambda slot: [...], 4, grace=30.0).run()
    """

    def __init__(
        self,
        command: Callable[[int], list[str]],
        processes: int,
        *,
        grace: float,
        start_window: float = 5.0,
        max_failed_starts: int = 3,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        self.command, self.processes, self.grace = command, processes, grace
        self.start_window, self.max_failed_starts = start_window, max_failed_starts
        self.children: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = asyncio.Event()
        self.forwarded = False

    async def run(self) -> None:
        """Until SIGTERM/SIGINT/SIGHUP (returns once every child is gone) or a crash loop
        (raises ``CrashLoop`` once every child is gone)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        log.info("supervising %d worker processes (pid %d)", self.processes, os.getpid())
        slots = [asyncio.create_task(self._keep(slot)) for slot in range(self.processes)]
        stop = asyncio.create_task(self.stopping.wait())
        try:
            done, _ = await asyncio.wait([stop, *slots], return_when=asyncio.FIRST_COMPLETED)
            self.stopping.set()
            await self._stop_children(signal.SIGTERM)
            await asyncio.gather(*slots, return_exceptions=True)
            for t in done:
                if t is not stop and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            stop.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stopping.is_set():
            return
        log.info("%s: stopping %d worker processes (grace %.0f s)", sig.name, len(self.children), self.grace)
        self.stopping.set()
        self._forward(signal.SIGTERM if sig == signal.SIGHUP else sig)

    def _forward(self, sig: signal.Signals) -> None:
        self.forwarded = True
        for child in self.children.values():
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(sig)

    async def _stop_children(self, sig: signal.Signals) -> None:
        if not self.forwarded:
            self._forward(sig)
        live = [c for c in self.children.values() if c.returncode is None]
        if not live:
            return
        _, stuck = await asyncio.wait(
            [asyncio.create_task(c.wait()) for c in live], timeout=self.grace + KILL_MARGIN
        )
        if stuck:
            log.error("%d worker processes outlived the grace: SIGKILL", len(stuck))
            for c in live:
                if c.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        c.kill()
            await asyncio.wait(stuck)

    async def _keep(self, slot: int) -> None:
        """Slot ``slot``: start its child, restart it when it dies, give up on a crash loop."""
        pauses = Backoff(first=0.1, cap=5.0)
        failed = 0
        env = {**os.environ, SLOT_ENV: str(slot)}
        while not self.stopping.is_set():
            started = time.monotonic()
            child = await asyncio.create_subprocess_exec(
                *self.command(slot), env=env, start_new_session=True, preexec_fn=_die_with_parent(os.getpid())
            )
            self.children[slot] = child
            if self.stopping.is_set():  # a signal came while it started: it missed the forward
                with contextlib.suppress(ProcessLookupError):
                    child.terminate()
            status = await child.wait()
            if self.stopping.is_set():
                return
            lived = time.monotonic() - started
            failed = failed + 1 if lived < self.start_window else 0
            if failed == 0:
                pauses.reset()
            why = f"signal {-status}" if status < 0 else f"status {status}"
            if failed >= self.max_failed_starts:
                raise CrashLoop(
                    f"worker process {slot} exited with {why} within {self.start_window:g} s of "
                    f"its start {failed} times in a row; stopping (try it alone: --processes 1)"
                )
            log.warning(
                "worker process %d (pid %d) exited with %s after %.1f s; restarting",
                slot,
                child.pid,
                why,
                lived,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), pauses.next())


def run_processes(
    app_spec: str,
    redis_url: str,
    config: WorkerConfig,
    processes: int,
    logging_args: tuple[str, ...] = (),
) -> None:
    """Supervise ``processes`` worker processes of ``app_spec`` until a signal (the CLI's entry
    point for ``--processes N`` with N > 1). A crash loop ends it with one line and exit 1."""

    def command(slot: int) -> list[str]:
        return child_command(redis_url, app_spec, config, slot, logging_args)

    supervisor = Supervisor(command, processes, grace=config.shutdown_grace)
    try:
        asyncio.run(supervisor.run())
    except CrashLoop as e:
        raise SystemExit(f"reliq worker: {e}") from None
