"""The Redis data model of reliq: every key, in one place.

All keys of one partition of a service share one hash tag, so every script touches one
Cluster slot and reliq runs on Redis Cluster unchanged.

Per service ``S`` (structural keys, no TTL; they live as long as the service):

=================================  ======  =====================================================
key                                type    content
=================================  ======  =====================================================
``reliq:{S}:stream``               stream  one short entry per trigger: ``i`` = invocation id
                                           (consumer group ``reliq``; created at id 0, MKSTREAM):
                                           priority ``normal``; ``stream:high``, ``stream:low``
                                           the same for the other levels (``LEVELS``)
``reliq:{S}:flow``                 hash    flow-control specs: ``*`` the service's own
                                           (``q=<max queued per partition>``, by workers),
                                           ``*!`` an operator's override (wins)
``reliq:{S}:delayed``              zset    invocation id -> due time (server ms); scheduled sends
                                           and retries waiting for their backoff
``reliq:{S}:parked``               zset    invocation id -> parked time (ms); failed for good
``reliq:{S}:archive``              zset    invocation id -> discard time (ms): parked ids an
                                           operator discarded (redrivable until the record expires)
``reliq:{S}:audit``                stream  (capped, ~5000) operator actions: who, action, target,
                                           result; written by the action scripts themselves
``reliq:{S}:minutes``              hash    per-minute outcome counters, 60 slots (minute mod 60):
                                           ``<slot>`` = minute, ``<slot>:<outcome>`` = count;
                                           ``resumed`` = resumptions since the key exists
``reliq:{S}:lost``                 stream  (capped) entry ids XAUTOCLAIM reported as deleted
``reliq:{S}:outbox``               stream  messages for other slots, written in the same script as
                                           the change they follow from: ``k`` = ``done`` (a child
                                           finished: ``t`` parent, ``s`` child, ``v`` outcome) or
                                           ``cancel`` (``t`` child, ``s`` parent); delivered at
                                           least once by the workers' relay, deleted once applied
``reliq:{S}:suspended``            zset    invocation id -> when it suspended (ms)
``reliq:{S}:registry``             hash    handler -> JSON (input schema, limits); by workers
``reliq:{S}:settings``             hash    ``retention_ms``: the retention of the worker that
                                           started last (the admin actions' discard and cancel)
``reliq:{S}:schemas``              hash    schema version -> input JSON schema, every version a
                                           worker published (heartbeats name the live ones)
``reliq:{S}:schedules``            hash    schedule name -> JSON ``Schedule`` (``store/cron.py``):
                                           declared ones written by workers at start, others
                                           by ``Client.create_schedule``
``reliq:{S}:ticks``                hash    per schedule: ``<name>`` = the last tick decided (ms;
                                           placed or skipped by the catch-up policy),
                                           ``<name>:i`` = the last tick's invocation id,
                                           ``<name>:p`` = paused since (ms), absent when active
``reliq:{S}:cron``                 zset    schedule name -> next fire time (ms) of every active
                                           schedule: what the workers' tick loop looks at
``reliq:{S}:flow``, ``fl:*``       hash..  flow control: specs, permits, waiters (``store/flow.py``)
``reliq:{S}:consumer:<name>``      string  heartbeat of one worker consumer (TTL 3 beats)
``reliq:{S}:cancel``               pub/sub channel: ids whose cancel was requested (prompt path)
``reliq:{S}:done``                 sharded pub/sub channel (SPUBLISH), one per partition: ids that
                                   just finished (complete, park, cancel, retry's cancel publish
                                   them, space-separated); waiters listen (client/waiters.py)
=================================  ======  =====================================================

Per invocation ``I`` of service ``S`` (no TTL while live; retention TTL once terminal):

=================================  ======  =====================================================
``reliq:{S}:inv:<I>``              hash    the invocation record (see ``record.py``); it is also
                                           the idempotency record: ``I`` derives from the key
``reliq:{S}:steps:<I>``            hash    step name -> msgspec JSON of the step's result
``reliq:{S}:children:<I>``         zset    child invocation ids, scored by call order
``reliq:{S}:inbox:<I>``            hash    what a handler awaited and got (``lua/lib/wake.lua``):
                                           ``c:<child>`` outcomes, ``n:<order>`` the handler of
                                           the child at that position, ``p:<name>`` promises, ``d:<n>``
                                           timer due times, ``t:<n>`` fired timers, ``x:<n>`` which
                                           of two waits won
=================================  ======  =====================================================

The record's field ``tl`` is the invocation's timeline (bounded, see ``lua/lib/timeline.lua``).

Global: ``reliq:services`` (set of service names that workers registered).

Partitions: partition 0 uses the tag ``{S}`` above; partition p >= 1 of a partitioned service
uses ``{S:p}`` for the same per-partition keys (stream, delayed, parked, archive, audit, minutes,
lost, outbox, suspended, flow, fl:*, inv/steps/children/inbox). ``layout``, ``registry``,
``settings``, ``schemas``, ``consumer:<name>``, ``schedules``, ``ticks``, ``cron`` and the
``cancel`` channel are service-wide and always use ``{S}``; schedule ticks are placed in
partition 0, so one script writes a tick and its cursor.

Invocation ids are ``<service>.<token>`` (partition 0) or ``<service>.<p>.<token>``: service and
partition are readable from the id, so a lookup goes straight to its slot. ``token`` is random,
or derived from an idempotency key (client key, or parent id + child key), which makes
registration idempotent without a second record.
"""

from __future__ import annotations

import functools
import re

from reliq.errors import ReliqError
from reliq.store.ids import (
    MAX_PARTITIONS,
    child_id,
    child_token,
    debounce_token,
    key_token,
    keyed_id,
    make_id,
    new_id,
    new_ids,
    partition_of_token,
    reply_token,
    tick_id,
    tick_token,
)

__all__ = [
    "GROUP",
    "LEVELS",
    "MAX_PARTITIONS",
    "SERVICES",
    "InvalidName",
    "ServiceKeys",
    "check_name",
    "child_id",
    "child_token",
    "debounce_token",
    "key_token",
    "keyed_id",
    "locate",
    "make_id",
    "new_id",
    "new_ids",
    "partition_of",
    "partition_of_token",
    "reply_token",
    "service_of",
    "tick_id",
    "tick_token",
]

GROUP = "reliq"
LEVELS = ("normal", "high", "low")  # priority levels, in the order of ``ServiceKeys.streams``
SERVICES = "reliq:services"
# the counters of ``minutes`` (``resumed``: suspended invocations queued again, lua/lib/wake.lua)
OUTCOMES = ("succeeded", "failed", "retried", "cancelled", "resumed")
RELEASE_IDLE_MS = 2**40  # idle time a released entry is given: older than any visibility timeout

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}\Z")  # \Z: "$" also matches before a final newline
_TOKEN = re.compile(r"^[a-z2-7]{26}\Z")


class InvalidName(ValueError, ReliqError):
    """A service or handler name that cannot be used in a key or URL."""


def check_name(kind: str, name: str) -> str:
    """Validate a service/handler name: lowercase ``[a-z][a-z0-9_-]*``, at most 63 chars.

    Names end up inside key names and hash tags, so ``{``, ``}``, ``:``, globs, dots and
    whitespace are refused.
    """
    if not isinstance(name, str) or not _valid_name(name):
        raise InvalidName(f"invalid {kind} name {name!r}: use [a-z][a-z0-9_-]*, at most 63 characters")
    return name


@functools.lru_cache(maxsize=1024)
def _valid_name(name: str) -> bool:
    """Whether ``name`` matches ``_NAME`` (cached: a process sees few names, each many times)."""
    return _NAME.match(name) is not None


@functools.lru_cache(maxsize=4096)
def locate(invocation_id: str) -> tuple[str, int, str]:
    """(service, partition, token) of an invocation id; raises ``InvalidName`` when malformed.
    Cached (the last 4,096 ids: one request asks for its id's keys several times; a malformed id
    raises every time)."""
    service, sep, rest = invocation_id.partition(".")
    part, dot, token = rest.partition(".")
    if not dot:
        part, token = "0", rest
    if (
        not sep
        or not _TOKEN.match(token)
        or not part.isdigit()
        or (dot and (part.startswith("0") or int(part) >= MAX_PARTITIONS))
    ):
        raise InvalidName(f"malformed invocation id {invocation_id!r}")
    return check_name("service", service), int(part), token


def service_of(invocation_id: str) -> str:
    """The service an invocation id belongs to; raises ``InvalidName`` for a malformed id."""
    return locate(invocation_id)[0]


def partition_of(invocation_id: str) -> int:
    return locate(invocation_id)[1]


class ServiceKeys:
    """Key names for one service; build once, reuse."""

    __slots__ = (
        "archive",
        "audit",
        "cancel_channel",
        "children_prefix",
        "consumer_prefix",
        "cron",
        "delayed",
        "done_channel",
        "flow",
        "inbox_prefix",
        "inv_prefix",
        "layout",
        "level",
        "lost",
        "minutes",
        "outbox",
        "parked",
        "partition",
        "prefix",
        "registry",
        "schedules",
        "schemas",
        "service",
        "settings",
        "steps_prefix",
        "stream",
        "streams",
        "suspended",
        "ticks",
    )

    def __init__(self, service: str, partition: int = 0, level: str = "normal") -> None:
        check_name("service", service)
        if not 0 <= partition < MAX_PARTITIONS:
            raise InvalidName(f"partition {partition} out of range")
        self.service = service
        self.partition = partition
        tag = service if partition == 0 else f"{service}:{partition}"
        self.prefix = f"reliq:{{{tag}}}:"
        base = f"reliq:{{{service}}}:"  # service-wide keys live with partition 0
        self.layout = base + "layout"
        self.cancel_channel = base + "cancel"
        # one stream per priority level; ``stream``: the one of ``level`` (what a worker holds
        # for an entry it read there, so every script that acks the entry acks that stream)
        self.streams = (self.prefix + "stream", self.prefix + "stream:high", self.prefix + "stream:low")
        self.level = level
        self.stream = self.streams[LEVELS.index(level)]
        self.flow = self.prefix + "flow"
        self.delayed = self.prefix + "delayed"
        self.parked = self.prefix + "parked"
        self.lost = self.prefix + "lost"
        self.archive = self.prefix + "archive"
        self.audit = self.prefix + "audit"
        self.minutes = self.prefix + "minutes"
        self.outbox = self.prefix + "outbox"
        self.suspended = self.prefix + "suspended"
        self.done_channel = self.prefix + "done"  # per partition: a sharded channel in its slot
        self.registry = base + "registry"
        self.settings = base + "settings"
        self.schemas = base + "schemas"
        self.schedules = base + "schedules"
        self.ticks = base + "ticks"
        self.cron = base + "cron"
        self.inv_prefix = self.prefix + "inv:"
        self.steps_prefix = self.prefix + "steps:"
        self.children_prefix = self.prefix + "children:"
        self.inbox_prefix = self.prefix + "inbox:"
        self.consumer_prefix = base + "consumer:"

    def at(self, level: str) -> ServiceKeys:
        """This partition's keys at priority ``level``: ``stream`` is that level's stream."""
        return self if level == self.level else ServiceKeys(self.service, self.partition, level)

    def debounce(self, token: str) -> str:
        return self.prefix + "debounce:" + token  # hash: the open window's 'id' and 'mode' (TTL)

    def inv(self, invocation_id: str) -> str:
        return self.inv_prefix + invocation_id

    def steps(self, invocation_id: str) -> str:
        return self.steps_prefix + invocation_id

    def children(self, invocation_id: str) -> str:
        return self.children_prefix + invocation_id

    def inbox(self, invocation_id: str) -> str:
        return self.inbox_prefix + invocation_id

    def consumer(self, name: str) -> str:
        return self.consumer_prefix + name

    def per_invocation(self, invocation_id: str) -> tuple[str, str, str, str]:
        """The four keys one invocation owns: record, steps, children, inbox."""
        i = invocation_id
        return self.inv(i), self.steps(i), self.children(i), self.inbox(i)
