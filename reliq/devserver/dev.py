"""``reliq dev``: a whole local deployment from one command, and its clean stop.

An embedded Valkey (AOF, ``appendfsync always``, so the gateway's ``fsync`` durability holds),
``workers`` worker processes (``python -m reliq worker``, each in its own session so a Ctrl-C at
the terminal reaches this process only and the stop order stays ours) and the gateway, in this
process, on 127.0.0.1. When the gateway returns (Ctrl-C), the workers get SIGTERM and their
shutdown grace, then Valkey stops.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reliq.devserver.embedded import EmbeddedValkey
from reliq.loading import load_app, serve_gateway
from reliq.worker.config import WorkerConfig


def worker_command(redis_url: str, app_spec: str, config: WorkerConfig) -> list[str]:
    """The command line of one dev worker: the tuning ``config`` carries (a consumer name is
    left out: each process makes its own, or they would share a pending list)."""
    return [
        sys.executable,
        "-m",
        "reliq",
        "--redis-url",
        redis_url,
        "worker",
        app_spec,
        "--concurrency",
        str(config.concurrency),
        "--visibility-timeout",
        str(config.visibility_timeout),
        "--shutdown-grace",
        str(config.shutdown_grace),
        "--batch",
        str(config.batch),
        "--retention",
        str(config.retention),
        "--suspend-after",
        str(config.suspend_after),
    ]


def run_dev(
    app_spec: str,
    config: WorkerConfig,
    *,
    workers: int = 1,
    port: int = 8000,
    redis_port: int = 6379,
    data_dir: Path | str = ".reliq/data",
) -> None:
    """Embedded Valkey + ``workers`` worker processes + the gateway on ``port``, until Ctrl-C.
    A bad ``app_spec`` raises ``reliq.loading.LoadError`` before anything starts."""
    load_app(app_spec)
    with EmbeddedValkey(redis_port, data_dir, detach_signals=True) as server:
        cmd = worker_command(server.url, app_spec, config)
        procs = [subprocess.Popen(cmd, start_new_session=True) for _ in range(max(0, workers))]
        print(
            f"reliq dev: valkey {server.url} (AOF, appendfsync always; data in {server.data_dir}); "
            f"{len(procs)} worker(s) for {app_spec}; gateway http://127.0.0.1:{port} "
            f"(docs at /docs). Ctrl-C stops everything.",
            flush=True,
        )
        try:
            serve_gateway(server.url, "127.0.0.1", port, app_spec, "fsync")
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(config.shutdown_grace + 10)
                except subprocess.TimeoutExpired:
                    p.kill()
