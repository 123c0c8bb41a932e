"""``reliq dev``: a whole local deployment from one command, and its clean stop.

An embedded Valkey (AOF, ``appendfsync always``, so the gateway's ``fsync`` durability holds),
``workers`` worker processes (``python -m reliq worker --processes 1``, the command line
``reliq worker --processes N`` gives each of its children, each in its own session so a Ctrl-C at
the terminal reaches this process only and the stop order stays ours) and the gateway, in this
process, on 127.0.0.1. Without an app, the bundled examples (``EXAMPLES``) run.

Stopping: Ctrl-C (SIGINT), SIGTERM and SIGHUP all do the same: the gateway drains and returns,
the workers get SIGTERM and their shutdown grace (then SIGKILL), then Valkey stops, and the
process exits 0. Valkey also dies with this process if it is SIGKILLed (``PR_SET_PDEATHSIG``).
A second Ctrl-C while that stop is under way does not wait: the workers are SIGKILLed (what their
handlers ran is retried after the visibility timeout, at the next start), Valkey stops, and the
process exits 130 with one line saying so. A second SIGTERM or SIGHUP changes nothing.

The data directory is locked for Valkey's life (``reliq.devserver.datalock``): a second ``reliq
dev`` or ``reliq redis`` on it is refused with one line, exit 1, before anything starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import NoReturn

from reliq.devserver.datalock import DataDirInUse, DataDirUnusable
from reliq.devserver.embedded import EmbeddedValkey, port_is_free
from reliq.loading import gateway_server, load_app
from reliq.worker.config import WorkerConfig
from reliq.worker.supervise import child_command

EXAMPLES = "reliq.examples.shop:app"  # what ``reliq dev`` runs without an argument


class _Stop:
    """SIGTERM ends the run like Ctrl-C (once: a second SIGTERM does not cut the cleanup short);
    SIGHUP is turned into SIGTERM, so that while the gateway serves, it drains first. A Ctrl-C
    once the stop is under way kills the workers at once (``force``).

    While the gateway serves, uvicorn owns SIGINT and SIGTERM: it drains on the first signal and
    stops waiting for open requests on a second Ctrl-C, then re-raises each signal it caught
    into the handlers it found (ours). Those replays are counted, not acted on: two Ctrl-Cs seen
    by uvicorn are two here, and the workers are then killed without waiting, as after a second
    Ctrl-C anywhere else."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self.procs = procs
        self.stopping = False
        self.serving = False  # the gateway runs in this thread and owns the signals
        self.interrupts = 0

    def term(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            self.stopping = True
            raise SystemExit(0)

    def hup(self, signum: int, frame: FrameType | None) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    def interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.interrupts += 1
        if self.serving:  # uvicorn's replay after its drain: the gateway returns by itself
            return
        if self.stopping:
            self.force()
        self.stopping = True
        raise KeyboardInterrupt

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.term)
        signal.signal(signal.SIGHUP, self.hup)
        signal.signal(signal.SIGINT, self.interrupt)

    def force(self) -> NoReturn:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the rest is quick: let it finish
        alive = [p for p in self.procs if p.poll() is None]
        for p in alive:
            p.kill()
        for p in alive:
            p.wait()
        print(
            f"reliq dev: second Ctrl-C: killed {len(alive)} worker process(es) without waiting for "
            "their handlers (they run again after the visibility timeout at the next start)",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(128 + signal.SIGINT)


def _stop_workers(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    alive = [p for p in procs if p.poll() is None]
    if alive:
        print(
            f"reliq dev: stopping {len(alive)} worker process(es): up to {grace:g} s for their "
            "handlers (Ctrl-C again to kill them now)",
            file=sys.stderr,
            flush=True,
        )
    for p in alive:
        p.terminate()
    for p in alive:
        try:
            p.wait(grace + 10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_dev(
    app_spec: str | None,
    config: WorkerConfig,
    *,
    workers: int = 1,
    port: int = 8000,
    redis_port: int = 6379,
    data_dir: Path | str = ".reliq/data",
) -> None:
    """Embedded Valkey + ``workers`` worker processes + the gateway on ``port``, until Ctrl-C,
    SIGTERM or SIGHUP. A bad ``app_spec``, a missing gateway extra or a port in use raises or
    exits with one line before anything starts."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    app_spec = app_spec or EXAMPLES
    load_app(app_spec)
    serve = gateway_server("dev")
    for what, p in (("gateway port", port), ("Valkey port", redis_port)):
        if not port_is_free(p):
            raise SystemExit(f"reliq dev: the {what} {p} is in use (choose another with --port/--redis-port)")
    procs: list[subprocess.Popen[bytes]] = []
    stop = _Stop(procs)
    stop.install()
    try:
        server = EmbeddedValkey(redis_port, data_dir, detach_signals=True).start()
    except DataDirInUse as e:
        raise SystemExit(f"reliq dev: {e}") from None
    except DataDirUnusable as e:  # a file, or a place it cannot create: the command line is wrong
        print(f"reliq dev: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        for slot in range(workers):  # each one process (--processes 1), its own consumer
            cmd = child_command(server.url, app_spec, config, slot)
            procs.append(subprocess.Popen(cmd, start_new_session=True))
        print(
            f"reliq dev: valkey {server.url} (AOF, appendfsync always; data in {server.data_dir}); "
            f"{len(procs)} worker(s) for {app_spec}; gateway http://127.0.0.1:{port} "
            f"(docs at /docs, dashboard at /dashboard). Ctrl-C stops everything.",
            flush=True,
        )
        stop.serving = True
        try:
            serve(server.url, "127.0.0.1", port, app_spec, "fsync")
        finally:
            stop.serving = False
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):  # stopping already: let the cleanup finish
            signal.signal(sig, signal.SIG_IGN)
        stop.stopping = True
        try:
            if stop.interrupts > 1:  # a second Ctrl-C reached the gateway while it drained
                stop.force()
            _stop_workers(procs, config.shutdown_grace)
        finally:
            server.stop()
