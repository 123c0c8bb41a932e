"""``reliq dev``: a whole local deployment from one command, and its clean stop.

An embedded Valkey (AOF, ``appendfsync always``, so the gateway's ``fsync`` durability holds),
``workers`` worker processes (``python -m reliq worker --processes 1``, the command line
``reliq worker --processes N`` gives each of its children, each in its own session so a Ctrl-C at
the terminal reaches this process only and the stop order stays ours) and the gateway, in this
process, on 127.0.0.1. Without an app, the bundled examples (``EXAMPLES``) run.

Stopping: Ctrl-C (SIGINT), SIGTERM and SIGHUP all do the same: the gateway drains and returns,
the workers get SIGTERM and their shutdown grace (then SIGKILL), then Valkey stops, and the
process exits 0. Valkey also dies with this process if it is SIGKILLed (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from types import FrameType

from reliq.devserver.embedded import EmbeddedValkey, port_is_free
from reliq.loading import gateway_server, load_app
from reliq.worker.config import WorkerConfig
from reliq.worker.supervise import child_command

EXAMPLES = "reliq.examples.shop:app"  # what ``reliq dev`` runs without an argument


class _Stop:
    """SIGTERM ends the run like Ctrl-C (once: a second signal does not cut the cleanup short);
    SIGHUP is turned into SIGTERM, so that while the gateway serves, it drains first."""

    def __init__(self) -> None:
        self.stopping = False

    def term(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            self.stopping = True
            raise SystemExit(0)

    def hup(self, signum: int, frame: FrameType | None) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.term)
        signal.signal(signal.SIGHUP, self.hup)


def _stop_workers(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
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
    app_spec = app_spec or EXAMPLES
    load_app(app_spec)
    serve = gateway_server("dev")
    for what, p in (("gateway port", port), ("Valkey port", redis_port)):
        if not port_is_free(p):
            raise SystemExit(f"reliq dev: the {what} {p} is in use (choose another with --port/--redis-port)")
    _Stop().install()
    procs: list[subprocess.Popen[bytes]] = []
    with EmbeddedValkey(redis_port, data_dir, detach_signals=True) as server:
        try:
            for slot in range(max(0, workers)):  # each one process (--processes 1), its own consumer
                cmd = child_command(server.url, app_spec, config, slot)
                procs.append(subprocess.Popen(cmd, start_new_session=True))
            print(
                f"reliq dev: valkey {server.url} (AOF, appendfsync always; data in {server.data_dir}); "
                f"{len(procs)} worker(s) for {app_spec}; gateway http://127.0.0.1:{port} "
                f"(docs at /docs, dashboard at /dashboard). Ctrl-C stops everything.",
                flush=True,
            )
            serve(server.url, "127.0.0.1", port, app_spec, "fsync")
        except KeyboardInterrupt:
            pass
        finally:
            for sig in (signal.SIGTERM, signal.SIGHUP):  # stopping already: let the cleanup finish
                signal.signal(sig, signal.SIG_IGN)
            _stop_workers(procs, config.shutdown_grace)
