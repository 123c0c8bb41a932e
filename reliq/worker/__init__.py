"""The worker: consume (read + claim) -> execute -> settle, plus reclaim, leases, schedule and
heartbeat, each loop in its own module; ``run`` wires them together."""

from reliq.worker.config import WorkerConfig
from reliq.worker.run import Worker, run_worker

__all__ = ["Worker", "WorkerConfig", "run_worker"]
