"""The worker: consume (read + claim) -> execute -> decide -> settle, plus reclaim, reap, leases,
cancels, schedule and heartbeat, each loop in its own module, all sharing one slot limiter
(``limits``) and one in-flight table (``inflight``); ``run`` wires them together."""

from reliq.worker.config import WorkerConfig
from reliq.worker.run import Worker, run_worker

__all__ = ["Worker", "WorkerConfig", "run_worker"]
