"""The adaptive concurrency limit (``WorkerConfig.concurrency=None``, the default): the rule, pure.

A delay-based rule in the family of TCP Vegas and Netflix concurrency-limits' Gradient2: the
signal is the **sojourn** of an invocation in this worker, from the claim reply to its handler's
return. It includes the wait for the event loop, so a handler that blocks the loop, or a shared
downstream whose latency grows with load, both show up as a sojourn that grows with the limit;
a handler whose latency does not depend on how many run at once (an I/O wait on something that
scales, a no-op) shows a flat sojourn. Measured per window of completions (half the limit, at
least ``WINDOW_MIN``), never per invocation; an invocation claimed before the limit last
changed is left out (it measures the old limit: counting it overshoots).

- **baseline**: the smallest sojourn seen, decayed: it moves towards each window's smallest by
  the window's share of ``MEMORY`` seconds, so a downstream that became slower for good is the
  new normal within a minute or so, while a window that sees it unloaded pins it down at once.
  Under a backlog every sojourn includes queueing, so it only rises with a window without a
  backlog, or at the floor (the least queueing this worker allows): else it would creep up to
  the loaded sojourn and let the limit grow without bound.
- **target**: ``TOLERANCE`` x baseline + ``ALLOWANCE``. The allowance is the queueing this worker
  accepts for batching: a no-op handler's sojourn is its place in the batch the loop runs
  (2-5 ms for 500 here), so a purely relative tolerance would keep a CPU-bound worker at small
  batches whose fixed round trips and fsyncs cost more than the wait they save.
- **grow** while the limit is used (a read of the window came back with as many entries as
  the slots it held: there is a backlog) and the window's mean sojourn is within the target:
  by ``GROWTH`` (x1.5) while the mean is below half the target, by sqrt(limit) (Gradient2's
  queue allowance) above that; **shrink** like Gradient2, to limit x target / mean (at most
  halving), when the mean exceeds the target; otherwise hold.
- **lease safety**: whatever the above says, halve when an invocation of the window waited more
  than ``visibility_timeout / 10`` between its claim and its handler's start (a handler blocking
  the loop holds every claimed entry behind it; the limit bounds how many). The handler's own
  run is not counted there: its lease is renewed while it runs.

The limit stays within [floor, ceiling]; the batch a read asks for is half of it (at most
``MAX_BATCH``), so two reads (of a partition's ``readers`` loops) hold it all while a third waits
for slots. ``Adaptive`` is the state; ``next_limit`` the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reliq.worker.config import WorkerConfig

INITIAL = 100  # the limit a worker starts at
FLOOR = 10  # default WorkerConfig.min_concurrency
CEILING = 1000  # default WorkerConfig.max_concurrency
MAX_BATCH = 500  # entries per read, at most
TOLERANCE = 2.0  # the mean sojourn may be this many times the baseline ...
ALLOWANCE = 0.025  # ... plus this many seconds of queueing in this worker
GROWTH = 1.5  # the limit grows by this factor per window of backlog within the target
MEMORY = 30.0  # seconds: a window of w seconds moves the baseline w / MEMORY of the way
WINDOW_MIN = 20  # completions per window, at least
LEASE_SHARE = 10  # the wait before a handler starts must stay below lease / this


@dataclass(slots=True)
class Window:
    """What one window of completions saw (seconds)."""

    count: int = 0  # completions
    total: float = 0.0  # sum of their sojourns
    least: float = float("inf")  # the smallest sojourn
    wait: float = 0.0  # the longest claim -> handler start
    full_reads: int = 0  # reads that got as many entries as the slots they held


def next_limit(
    limit: int, baseline: float, w: Window, *, floor: int, ceiling: int, lease: float, span: float = 0.0
) -> tuple[int, float]:
    """The rule: the next limit and baseline after the window ``w``, which lasted ``span``
    seconds (``baseline`` 0: none yet)."""
    if w.count == 0:
        return limit, baseline
    if baseline <= 0 or w.least < baseline:
        baseline = w.least
    elif not w.full_reads or limit <= floor:  # under a backlog, only at the floor (see above)
        baseline += (w.least - baseline) * min(1.0, span / MEMORY)
    mean = w.total / w.count
    target = baseline * TOLERANCE + ALLOWANCE
    new = float(limit)
    if w.wait > lease / LEASE_SHARE:
        new = limit / 2
    elif mean > target:
        new = limit * max(0.5, target / mean)
    elif w.full_reads:
        new = limit * GROWTH if mean < target / 2 else limit + math.sqrt(limit)
        new = max(new, limit + 1.0)
    return max(floor, min(ceiling, int(new))), baseline


def batch_for(limit: int) -> int:
    """Entries a read asks for at this limit: half of it, so two reads hold the whole limit."""
    return max(1, min(MAX_BATCH, limit // 2))


class Adaptive:
    """The adaptive limit's state, fed by execute (``done``) and consume (``read``). ``done``
    returns the new limit when a window closes and it changed (the caller resizes the limiter)."""

    __slots__ = ("baseline", "ceiling", "changed", "floor", "lease", "limit", "since", "window")

    def __init__(self, *, floor: int = FLOOR, ceiling: int = CEILING, lease: float = 30.0) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"the adaptive limit needs 1 <= floor <= ceiling, not {floor} and {ceiling}")
        self.floor, self.ceiling, self.lease = floor, ceiling, lease
        self.limit = max(floor, min(ceiling, INITIAL))
        self.baseline = 0.0
        self.window = Window()
        self.since = 0.0  # when the window began (0: at its first sample)
        self.changed = -math.inf  # when the limit last changed

    @classmethod
    def of(cls, config: WorkerConfig) -> Adaptive | None:
        """The state for ``config``; None when its ``concurrency`` is fixed."""
        if config.concurrency is not None:
            return None
        lease = config.visibility_timeout
        return cls(floor=config.min_concurrency, ceiling=config.max_concurrency, lease=lease)

    @property
    def batch(self) -> int:
        return batch_for(self.limit)

    def read(self, held: int, got: int) -> None:
        if got >= held:
            self.window.full_reads += 1

    def done(self, now: float, claimed_at: float, begun: float) -> int | None:
        """One completion (``time.monotonic()`` values): the claim reply, the handler's start and
        its return. Returns the new limit when this closes a window that changed it."""
        if claimed_at < self.changed:
            return None  # claimed under the previous limit
        w = self.window
        if not w.count and not self.since:
            self.since = claimed_at
        sojourn, wait = now - claimed_at, begun - claimed_at
        w.count += 1
        w.total += sojourn
        if sojourn < w.least:
            w.least = sojourn
        if wait > w.wait:
            w.wait = wait
        if w.count < max(WINDOW_MIN, self.limit // 2):
            return None
        before = self.limit
        self.limit, self.baseline = next_limit(
            before,
            self.baseline,
            w,
            floor=self.floor,
            ceiling=self.ceiling,
            lease=self.lease,
            span=now - self.since,
        )
        self.window, self.since = Window(), now
        if self.limit == before:
            return None
        self.changed = now
        return self.limit
