"""The documents of the admin views (``overview``, ``actions``, ...): the JSON the gateway's
``/admin`` API answers and ``reliq pending|parked|inspect --json`` prints. Times are unix ms of the
Redis server's clock. Shapes are documented in docs/http-api.md ("Admin API"); new fields get
defaults."""

from __future__ import annotations

from typing import Any

import msgspec

from reliq.admin.waits import WaitReason
from reliq.store.durability import Durability
from reliq.store.layout import Layout
from reliq.store.record import Invocation


class OldestPending(msgspec.Struct, frozen=True, kw_only=True):
    entry_id: str
    age_ms: int
    idle_ms: int
    owner: str
    deliveries: int
    partition: int = 0


class Consumer(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    alive: bool
    pending: int
    idle_ms: int | None = None
    inflight: int | None = None
    concurrency: int | None = None
    host: str | None = None
    pid: int | None = None
    processed: int | None = None
    heartbeat_at: int | None = None
    partitions: list[int] = []  # partitions where it holds pending entries


class PartitionConsumer(msgspec.Struct, frozen=True, kw_only=True):
    """A consumer holding entries in one partition (liveness: its service-wide heartbeat)."""

    name: str
    alive: bool
    pending: int
    idle_ms: int | None = None


class Minute(msgspec.Struct, frozen=True, kw_only=True):
    minute: int
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    resumed: int = 0  # suspended invocations queued again


class Numbers(msgspec.Struct, frozen=True, kw_only=True):
    """The numbers of one partition, or their sums over a service's partitions
    (``reliq.admin.aggregate``). In the JSON they come first, then what the document adds."""

    stream_length: int
    lag: int | None
    pending: int
    oldest_pending: OldestPending | None
    delayed: int
    parked: int
    archived: int
    lost: int
    suspended: int = 0
    queued: int = 0  # waiting for a per-key permit (state 'queued', store/flow.py)


class PartitionOverview(Numbers, frozen=True, kw_only=True):
    """One partition's numbers; ``consumers`` are those holding entries in it."""

    partition: int
    consumers: list[PartitionConsumer]
    consumers_total: int
    minutes: list[Minute]


class ServiceOverview(Numbers, frozen=True, kw_only=True):
    """Sums over the partitions ``0..layout.high-1``; ``partitions`` has each one's numbers."""

    service: str
    consumers: list[Consumer]
    consumers_total: int
    minutes: list[Minute]
    layout: Layout = Layout()
    partitions: list[PartitionOverview] = []


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    now: int
    durability: Durability | None
    services: list[ServiceOverview]


class PendingEntry(msgspec.Struct, frozen=True, kw_only=True):
    entry_id: str
    invocation_id: str | None
    handler: str | None
    state: str | None
    owner: str
    owner_alive: bool
    idle_ms: int
    deliveries: int
    attempt: int | None = None
    epoch: int | None = None
    lease_until: int | None = None
    reclaim_in_ms: int | None = None
    step: str | None = None
    lost: bool = False
    partition: int = 0
    released: bool = False  # an operator released it: reclaimable now (reclaim_in_ms 0)


class PendingPage(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    now: int
    total: int
    items: list[PendingEntry]
    next_cursor: str | None
    partition: int | None = None  # the filter, or None: every partition
    partitions: int = 1  # partitions that may hold work (the layout's high)


class ErrorSummary(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    message: str
    status: int | None = None


class ParkedItem(msgspec.Struct, frozen=True, kw_only=True):
    invocation_id: str
    parked_at: int
    handler: str | None = None
    reason: str | None = None
    error: ErrorSummary | None = None
    attempt: int | None = None
    deliveries: int | None = None
    crashes: int | None = None
    redrives: int | None = None
    expired: bool = False
    partition: int = 0


class ParkedPage(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    now: int
    archived: bool
    total: int
    items: list[ParkedItem]
    next_cursor: str | None
    partition: int | None = None
    partitions: int = 1


class WaitItem(msgspec.Struct, frozen=True, kw_only=True):
    """One thing a suspended invocation waits for (``record.Wait``) and where it stands:
    ``state`` is the child's state (``expired`` when its record is gone), ``resolved`` /
    ``rejected`` for a promise, ``fired`` for a timer, or None while it has not happened."""

    kind: str  # child | promise | timer
    target: str = ""  # child id, promise name, or the timer's journal number
    due: int | None = None  # a timer's due time (ms)
    alone: bool = False  # ends the wait by itself (a deadline, a promise)
    state: str | None = None


class SuspendedItem(msgspec.Struct, frozen=True, kw_only=True):
    invocation_id: str
    suspended_at: int
    handler: str | None = None
    state: str | None = None  # 'suspended'; another state if it moved on since the set was read
    suspensions: int | None = None
    waits: list[WaitItem] = []
    expired: bool = False
    partition: int = 0


class SuspendedPage(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    now: int
    total: int
    items: list[SuspendedItem]
    next_cursor: str | None
    partition: int | None = None
    partitions: int = 1


class TreeNode(msgspec.Struct, frozen=True, kw_only=True):
    """An invocation in a function tree: its state, what it waits for when suspended, and its
    children down to the depth asked (``children_total`` > ``len(children)`` when cut)."""

    id: str
    service: str
    handler: str | None
    state: str
    waits: list[WaitItem] = []
    children_total: int = 0
    children: list[TreeNode] = []


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One timeline event (see lua/lib/timeline.lua)."""

    at: int
    event: str
    actor: str | None = None
    epoch: int | None = None
    detail: str | None = None
    until: int | None = None
    count: int | None = None


class Relative(msgspec.Struct, frozen=True, kw_only=True):
    """A parent or child, as a link."""

    id: str
    service: str
    handler: str | None
    state: str


class EntryRef(msgspec.Struct, frozen=True, kw_only=True):
    entry_id: str
    owner: str
    owner_alive: bool
    idle_ms: int
    deliveries: int


class Detail(msgspec.Struct, frozen=True, kw_only=True):
    now: int = 0  # the server's time (ms): lease, retry and timeline times are relative to it
    invocation: Invocation
    timeline: list[Event]
    parent: Relative | None
    children: list[Relative]
    pending_entry: EntryRef | None
    parked: bool
    archived: bool
    partition: int = 0
    waits: list[WaitItem] = []  # while suspended: what it waits for, with each one's state
    wait: WaitReason | None = None  # why it has not started yet (reliq.admin.waits)
    children_total: int = 0  # all its children; ``children`` holds the first 200 (detail.MAX_CHILDREN)


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    service: str
    at: int
    who: str
    action: str
    target: str
    result: str
    partition: int = 0


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[AuditEntry]
    next_cursor: str | None
    now: int | None = None  # the server's time (ms) when read


class ActionResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    action: str
    status: str
    changed: bool
    state: str | None


class BulkResult(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    redriven: list[str]
    examined: int
    remaining: int
    next_cursor: str | None = None  # where the walk continues (None: it reached the end)


def to_builtins(doc: Any) -> Any:
    return msgspec.to_builtins(doc)
