"""Worker configuration: the tuning knobs of one worker process, and its consumer name."""

from __future__ import annotations

import math
import os
import secrets
import socket
from dataclasses import dataclass

from reliq.client.callbacks import CallbackSettings


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """Worker tuning. Times in seconds.

    ``concurrency``: handlers running at once, a hard cap; None (the default) = adaptive: a
    limit that starts at 100 and moves within [``min_concurrency``, ``max_concurrency``] by the
    sojourn of invocations in this worker (``reliq.worker.adapt``). ``batch``: entries a read
    asks for; None = half the adaptive limit (at most 500), or 100 with a fixed ``concurrency``.
    ``readers``: read loops per partition while it has traffic (one more reads while another
    waits for its claim; 1 = one read at a time, the behaviour before).

    ``visibility_timeout``: how long an entry may sit unrenewed in a consumer's pending list
    before a live worker reclaims it. Leases are renewed every ``visibility_timeout / 3``.
    ``partitions``: consume only these partition numbers (of every service); None = all.
    Partitions added to a service while the worker runs are picked up within ``layout_interval``.
    ``settle_patience``: how long an outcome write waits out Redis errors before the worker gives
    up on it and leaves the entry pending for reclaim (the scripts are idempotent and fenced).
    ``suspend_after``: how long a handler's durable await (a child, a timer, a promise) waits in
    memory before the invocation suspends (a handler's own ``suspend_after`` wins); it suspends at
    once when other work waits for a slot. ``cancel_grace``: how long a cancelled handler may
    compensate. ``callbacks``: the HTTP callback settings (``reliq.worker.callbacks``; None reads
    ``RELIQ_CALLBACK_*``; with hosts set, this worker delivers callbacks). ``relay_interval``:
    how often the outbox of each partition is swept (messages for other slots are also relayed
    at once by whoever wrote them).
    """

    concurrency: int | None = None  # None: adaptive
    sync_concurrency: int = 16
    batch: int | None = None  # None: half the adaptive limit, or 100 with a fixed concurrency
    readers: int = 3  # read loops per partition with traffic
    min_concurrency: int = 10  # the adaptive limit's floor ...
    max_concurrency: int = 1000  # ... and ceiling
    visibility_timeout: float = 30.0
    reclaim_interval: float | None = None
    block: float = 1.0
    heartbeat_interval: float = 5.0
    shutdown_grace: float = 30.0
    retention: float = 24 * 3600.0
    consumer: str | None = None
    partitions: frozenset[int] | None = None
    layout_interval: float = 5.0  # seconds between checks for partitions added to a service
    reap_after: float = 3600.0  # consumers idle this long with nothing pending are deleted
    reap_every: float = 600.0  # seconds between reaping rounds (per partition)
    settle_patience: float = 60.0
    suspend_after: float = 1.0  # a durable await waits this long in memory, then suspends
    cancel_grace: float = 30.0  # a cancelled handler's compensation may run this long
    relay_interval: float = 1.0  # seconds between sweeps of a partition's outbox
    callbacks: CallbackSettings | None = None  # HTTP callback delivery; None: from the environment
    cron_grace: float = 2.0  # seconds a schedule tick may be late and still count as on time

    def __post_init__(self) -> None:
        for name in ("concurrency", "batch", "readers", "min_concurrency", "max_concurrency"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"{name} must be an integer >= 1, not {value!r}")
        for name in _POSITIVE + _NON_NEGATIVE:
            value = getattr(self, name)
            if value is None and name == "reclaim_interval":
                continue
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (value == 0 and name in _POSITIVE):
                at_least = "> 0" if name in _POSITIVE else ">= 0"
                raise ValueError(f"{name} must be a finite number of seconds {at_least}, not {value!r}")
        if self.partitions is not None and not self.partitions:
            raise ValueError("partitions must name at least one partition (None: all of them)")
        if self.min_concurrency > self.max_concurrency:
            raise ValueError(
                f"min_concurrency ({self.min_concurrency}) must not exceed max_concurrency "
                f"({self.max_concurrency})"
            )

    @property
    def adaptive(self) -> bool:
        return self.concurrency is None

    @property
    def renew_interval(self) -> float:
        return self.visibility_timeout / 3

    @property
    def reclaim_every(self) -> float:
        return (
            self.reclaim_interval
            if self.reclaim_interval is not None
            else min(5.0, self.visibility_timeout / 2)
        )

    @property
    def lease_ms(self) -> int:
        return int(self.visibility_timeout * 1000)

    @property
    def retention_ms(self) -> int:
        return int(self.retention * 1000)


# seconds: 0 or less would lose every lease at once, delete records as they finish (retention:
# idempotency gone), or spin a loop; NaN and infinity compare false with everything
_POSITIVE = (
    "visibility_timeout",
    "reclaim_interval",
    "block",
    "heartbeat_interval",
    "retention",
    "layout_interval",
    "reap_after",
    "reap_every",
    "settle_patience",
    "relay_interval",
)
_NON_NEGATIVE = ("shutdown_grace", "suspend_after", "cancel_grace", "cron_grace")


def default_consumer() -> str:
    """``host-pid-random``: unique per process, readable in the dashboard."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(2)}"
