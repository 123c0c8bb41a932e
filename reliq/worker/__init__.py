"""The worker: consume (read + claim) -> execute -> settle, plus reclaim, leases, schedule and
heartbeat, each loop in its own module; ``run`` wires them together."""

from reliq.worker.run import Worker, run_worker
from reliq.worker.runtime import WorkerConfig

__all__ = ["Worker", "WorkerConfig", "run_worker"]
