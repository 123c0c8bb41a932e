"""The invocation record ``reliq:{S}:inv:<I>``: one hash per invocation, written only by the Lua
scripts (``lua/``), read here into the status document (``Invocation``). This module owns the
field names: Python code reads and writes the record only through ``Field`` (and ``FIELDS`` is
what ``tests/store/test_record.py`` checks the scripts against).

Values are strings as Redis stores them: "ms" is unix milliseconds of the server clock, "int" a
decimal, "JSON" msgspec JSON, ``''`` means unset. A field no script has written yet is absent.

================  ======  ==================================================  ========================
field             type    meaning                                             written by
================  ======  ==================================================  ========================
``state``         str     one of ``STATES`` (below)                           every transition
``service``       str     the service; absent: read from the id               register
``handler``       str     handler name                                        register
``payload``       JSON    the input                                           register
``fp``            str     fingerprint: sha256 of handler + payload; same key  register
                          with another fingerprint is a conflict
``key``           str     idempotency key, ``''`` when none                   register
``parent``        str     parent invocation id, ``''`` for a top-level send   register
``trace``         str     W3C traceparent of the sender; absent: none         register (only when set)
``reply``         str     ``service/handler`` that gets the outcome (reply-   register (only when set)
                          to): the finishing script writes an outbox
                          ``reply`` message
``sched``         ms      the schedule tick this invocation is (cron)         register (only when set)
``prio``          str     ``high`` | ``low``: the stream its entries go to    register (only when not
                          (``lua/lib/enqueue.lua``); absent: normal           normal)
``created``       ms      accepted                                            register
``due``           ms      when it runs: the scheduled time, or the next       register (when not
                          attempt's time while ``retrying``; absent: created  created), retry, retry_now
``entry``         str     id of the stream entry that triggers it (``''``     register, promote, redrive,
                          while delayed and once settled but succeeded or     retry_now; cleared by
                          cancelled); claim runs only the entry named here    retry, park
``attempt``       int     attempt number, from 1                              register, retry, redrive
``deliveries``    int     claims so far (reclaims included); absent: 0        claim
``crashes``       int     claims that found it still ``running``: a holder    claim (when it grows),
                          died; absent: 0                                     redrive
``epoch``         int     lease epoch, +1 per claim: every settle script is   claim
                          fenced by it; absent: 0 (never claimed)
``owner``         str     lease holder (ignored once terminal)                claim; cleared by release,
                                                                              retry, park, suspend
``lease_until``   ms      end of the current lease (as ``owner``)             claim, renew; as ``owner``
``claim``         str     token of the claim call, so a re-sent claim         claim
                          returns the same claim without bumping again
``started``       ms      last claim                                          claim
``updated``       ms      last transition: the latest of it and the times     transitions but claim and
                          (claim, finish write ``started`` / ``finished``)    finish
``finished``      ms      reached a terminal state                            complete, park, retry,
                                                                              cancel; cleared by redrive
``result``        JSON    the handler's result                                complete
``error``         JSON    last failure (``ErrorInfo``)                        retry, park
``reason``        str     why it was parked: ``terminal``, ``crash-loop``,    park; cleared by redrive
                          ``invalid-input``, ``attempts-exhausted``,
                          ``child-failed``, ``nondeterminism``
``cancel``        ``1``   cancel requested (the worker acts on it); ``2``:    cancel, claim, suspend;
                          seen by a compensating run                          removed by redrive
``step``          str     name of the last step journaled (also: the steps    step
                          key exists)
``kids``          ``1``   a child was linked (the children key exists)        link_child
``discarded``     ms      an operator moved it from parked to the archive     discard; cleared by redrive
``redrives``      int     redrives so far                                     redrive
``waits``         JSON    while ``suspended``: what it waits for, ``[field,   suspend; cleared when
                          any, due]`` items (``lua/lib/wake.lua``)            it resumes
``susp``          int     suspensions so far (also: it has a journal)         suspend
``ibx``           ``1``   the inbox key exists                                wake, note
``fk``            str     flow key ``handler NUL value`` (store/flow.py)      register, promote
``fseq``          str     its place in the key's line (registration order)    register, promote, suspend
``wait``          str     why it waits: ``concurrency`` | ``rate`` | ``''``   register, promote; claim
``until``         ms      ``wait`` = ``rate``: when it may start              register, promote; claim
``tl``            lines   the timeline, one JSON array per event (format and  every script that changes
                          bound: ``lua/lib/timeline.lua``)                    the record
================  ======  ==================================================  ========================

A registration (``lua/lib/place.lua``) writes no field whose value is its default above (an earlier
release's record, which has them, reads the same), but ``service``, ``parent``, ``key`` and
``attempt`` always: earlier releases' ``parse`` and ``claim.lua`` read them without a default.

States: ``scheduled`` (waits in the delayed set) -> ``pending`` (has a stream entry) ->
``running`` (claimed, leased) -> ``succeeded`` | ``failed`` (parked) | ``cancelled``, or
``retrying`` (delayed until ``due``) -> ``pending`` again, or ``suspended`` (waits for children,
timers or promises without holding a worker; ``waits`` says for what) -> ``pending`` again.
``queued``: waits for a per-key permit (no stream entry; admitted in registration order).
``TERMINAL`` states start the retention TTL of the record, its steps, its children and its inbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

import msgspec

from reliq.codec import decode, text

State = Literal[
    "scheduled", "queued", "pending", "running", "retrying", "suspended", "succeeded", "failed", "cancelled"
]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
STATES: frozenset[str] = frozenset(get_args(State))


class Field:
    """The record's field names (the table above)."""

    STATE: Final = "state"
    SERVICE: Final = "service"
    HANDLER: Final = "handler"
    PAYLOAD: Final = "payload"
    FP: Final = "fp"
    KEY: Final = "key"
    PARENT: Final = "parent"
    TRACE: Final = "trace"
    REPLY: Final = "reply"
    SCHEDULED: Final = "sched"
    PRIO: Final = "prio"
    CREATED: Final = "created"
    DUE: Final = "due"
    ENTRY: Final = "entry"
    ATTEMPT: Final = "attempt"
    DELIVERIES: Final = "deliveries"
    CRASHES: Final = "crashes"
    EPOCH: Final = "epoch"
    OWNER: Final = "owner"
    LEASE_UNTIL: Final = "lease_until"
    CLAIM: Final = "claim"
    STARTED: Final = "started"
    UPDATED: Final = "updated"
    FINISHED: Final = "finished"
    RESULT: Final = "result"
    ERROR: Final = "error"
    REASON: Final = "reason"
    CANCEL: Final = "cancel"
    STEP: Final = "step"
    KIDS: Final = "kids"
    DISCARDED: Final = "discarded"
    REDRIVES: Final = "redrives"
    WAITS: Final = "waits"
    SUSPENDS: Final = "susp"
    INBOX: Final = "ibx"
    FLOW_KEY: Final = "fk"
    FLOW_SEQ: Final = "fseq"
    WAIT: Final = "wait"
    UNTIL: Final = "until"
    TIMELINE: Final = "tl"


FIELDS: frozenset[str] = frozenset(v for n, v in vars(Field).items() if n.isupper())


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a failed attempt left behind."""

    type: str
    message: str
    traceback: str = ""
    status: int | None = None


class Wait(msgspec.Struct, frozen=True, kw_only=True):
    """One thing a suspended invocation waits for: a ``child`` (``target`` = its id), a
    ``promise`` (its name) or a ``timer`` (``due``, unix ms); ``alone``: it ends the wait by itself
    (a deadline, a promise), else the wait ends when all such items are in (or one failed)."""

    kind: Literal["child", "promise", "timer"]
    target: str = ""
    due: int | None = None
    alone: bool = False


_KINDS: dict[str, Literal["child", "promise", "timer"]] = {"c": "child", "p": "promise", "t": "timer"}


def waits(raw: bytes | None) -> list[Wait]:
    """The record's ``waits`` field (``[[inbox field, any, due ms], ...]``) as ``Wait`` items."""
    if not raw:
        return []
    out = []
    for item in msgspec.json.decode(raw):
        field, alone, due = str(item[0]), bool(item[1]), int(item[2] or 0)
        kind, _, target = field.partition(":")
        out.append(Wait(kind=_KINDS.get(kind, "timer"), target=target, due=due or None, alone=alone))
    return out


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """Answer to a send: the invocation id, and whether this call created it."""

    id: str
    status: Literal["accepted", "previously_accepted", "debounced"]  # debounced: joined a window
    state: str = "pending"


class Invocation(msgspec.Struct, frozen=True, kw_only=True):
    """Status document of one invocation (``Client.get``). Times are unix milliseconds."""

    id: str
    service: str
    handler: str
    state: State
    attempt: int
    deliveries: int
    crashes: int
    epoch: int
    owner: str | None = None
    lease_until: int | None = None
    next_retry: int | None = None
    due: int | None = None
    created: int | None = None
    updated: int | None = None
    started: int | None = None
    finished: int | None = None
    parent_id: str | None = None
    traceparent: str | None = None
    reply_to: str | None = None
    scheduled_for: int | None = None
    idempotency_key: str | None = None
    reason: str | None = None
    cancel_requested: bool = False
    redrives: int = 0
    suspensions: int = 0
    waits: list[Wait] = []
    flow_key: str | None = None  # the per-key limits' key value (without the handler)
    waiting_for: str | None = None  # 'concurrency' | 'rate' while queued or rate-delayed
    wait_until: int | None = None  # waiting_for = 'rate': when it may start
    discarded: int | None = None
    payload: Any = None
    result: Any = None
    error: ErrorInfo | None = None
    steps: dict[str, Any] = {}
    children: list[str] = []


_error_decoder = msgspec.json.Decoder(ErrorInfo)
Raw = Mapping[bytes, bytes]  # a hash as HGETALL returns it (see ``reliq.store.commands``)


def fields(raw: Raw) -> dict[str, bytes]:
    """A record hash as read from Redis (HGETALL), keyed by field name."""
    return {text(k): v for k, v in raw.items()}


def found(raw: Raw | None) -> bool:
    """Whether an HGETALL of a record found one (unknown or expired reads as an empty hash)."""
    return bool(raw) and Field.STATE in fields(raw or {})


def _int(v: bytes | None, default: int | None = None) -> int | None:
    return int(v) if v else default


def _str(v: bytes | None) -> str | None:
    return text(v) if v else None


def parse(invocation_id: str, raw: Raw, steps: Raw, children: list[bytes]) -> Invocation:
    """Build the status document from the raw hashes read from Redis."""
    F, h = Field, fields(raw)
    state = text(h[F.STATE])
    err = h.get(F.ERROR)
    created = _int(h.get(F.CREATED))  # absent due: = created (a tombstone, no fp: no due)
    due = _int(h.get(F.DUE), created if F.FP in h else None)
    started, finished = _int(h.get(F.STARTED)), _int(h.get(F.FINISHED))
    updated = max((t for t in (_int(h.get(F.UPDATED)), created, started, finished) if t), default=None)
    held = state not in TERMINAL  # complete leaves the holder's fields
    return Invocation(
        id=invocation_id,
        service=text(h.get(F.SERVICE) or invocation_id.partition(".")[0]),  # the id begins with it
        handler=text(h[F.HANDLER]),
        state=state,  # type: ignore[arg-type]
        attempt=int(h.get(F.ATTEMPT, 1)),
        deliveries=int(h.get(F.DELIVERIES, 0)),
        crashes=int(h.get(F.CRASHES, 0)),
        epoch=int(h.get(F.EPOCH, 0)),
        owner=_str(h.get(F.OWNER)) if held else None,
        lease_until=_int(h.get(F.LEASE_UNTIL)) if held else None,
        next_retry=due if state == "retrying" else None,
        due=due,
        created=created,
        updated=updated,
        started=started,
        finished=finished,
        parent_id=_str(h.get(F.PARENT)),
        traceparent=_str(h.get(F.TRACE)),
        reply_to=_str(h.get(F.REPLY)),
        scheduled_for=_int(h.get(F.SCHEDULED)),
        idempotency_key=_str(h.get(F.KEY)),
        reason=_str(h.get(F.REASON)),
        cancel_requested=h.get(F.CANCEL) == b"1",
        redrives=int(h.get(F.REDRIVES, 0)),
        suspensions=int(h.get(F.SUSPENDS, 0)),
        waits=waits(h.get(F.WAITS)),
        flow_key=text(h[F.FLOW_KEY]).partition("\0")[2] if h.get(F.FLOW_KEY) else None,
        waiting_for=_str(h.get(F.WAIT)),
        wait_until=_int(h.get(F.UNTIL)),
        discarded=_int(h.get(F.DISCARDED)),
        payload=decode(h.get(F.PAYLOAD)),
        result=decode(h.get(F.RESULT)),
        error=_error_decoder.decode(err) if err else None,
        steps={text(k): decode(v) for k, v in steps.items()},
        children=[text(c) for c in children],
    )
