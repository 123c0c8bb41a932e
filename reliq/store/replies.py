"""What the Lua scripts answer, as types: each status a ``Literal`` of exactly what its script
can return, multi-value replies as Structs (``Claim``, one per claimed entry) or NamedTuples
(``Registered``, per registered invocation). ``reliq.store.scripts`` decodes every reply here,
once; a reply outside its type raises ``UnexpectedReply`` (the script and its wrapper disagree)
instead of travelling on as an unknown string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Literal, NamedTuple, TypeVar, get_args

import msgspec

from reliq.codec import text
from reliq.store.record import State

RegisterStatus = Literal["accepted", "previously_accepted", "conflict", "bad_key", "backpressure"]
ClaimStatus = Literal["run", "cancel", "compensate", "skip"]
Settled = Literal["ok", "fenced", "noop"]  # park
Completed = Literal["ok", "fenced", "noop", "keys"]  # complete
Retried = Literal["ok", "cancelled", "fenced", "noop"]
Renewed = Literal["ok", "cancel", "lost"]
Cancelled = Literal["cancelled", "cancelling", "terminal", "unknown"]
Redriven = Literal["redriven", "not_failed", "unknown"]
Discarded = Literal["discarded", "not_parked", "unknown"]
Released = Literal["released", "already_released", "not_pending", "owner_alive", "unknown"]
Requeued = Literal["queued", "not_retrying", "unknown"]
Suspended = Literal["suspended", "resumed", "fenced", "noop"]
Woken = Literal["resumed", "stored", "duplicate", "terminal", "unknown"]
ActionStatus = Cancelled | Redriven | Discarded | Released | Requeued  # the operator actions'


class UnexpectedReply(RuntimeError):
    """A script answered something its wrapper does not know: they are out of step."""


S = TypeVar("S", bound=str)


class _Status(Generic[S]):
    """Decodes one status reply into the Literal ``S`` (whose values it checks)."""

    def __init__(self, kind: Any) -> None:
        self.allowed = frozenset(get_args(kind))
        # the reply as it comes (bytes) or as text -> the value: one dict lookup per status on
        # the hot paths (claim and complete answer one per invocation)
        self._values: dict[Any, S] = {v: v for v in self.allowed}
        self._values.update({v.encode(): v for v in self.allowed})

    def __call__(self, reply: Any) -> S:
        try:
            return self._values[reply]
        except (KeyError, TypeError):
            value = text(reply) if isinstance(reply, bytes | str | int | float) else repr(reply)
            raise UnexpectedReply(
                f"script replied {value!r}, expected one of {sorted(self.allowed)}"
            ) from None


as_register: _Status[RegisterStatus] = _Status(RegisterStatus)
as_state: _Status[State] = _Status(State)
as_claim_status: _Status[ClaimStatus] = _Status(ClaimStatus)
as_settled: _Status[Settled] = _Status(Settled)
as_completed: _Status[Completed] = _Status(Completed)
as_retried: _Status[Retried] = _Status(Retried)
as_renewed: _Status[Renewed] = _Status(Renewed)
as_cancelled: _Status[Cancelled] = _Status(Cancelled)
as_redriven: _Status[Redriven] = _Status(Redriven)
as_discarded: _Status[Discarded] = _Status(Discarded)
as_released: _Status[Released] = _Status(Released)
as_requeued: _Status[Requeued] = _Status(Requeued)
as_suspended: _Status[Suspended] = _Status(Suspended)
as_woken: _Status[Woken] = _Status(Woken)


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    """One invocation to place (see register.lua)."""

    id: str
    fp: str
    handler: str
    payload: bytes
    parent: str = ""
    key: str = ""
    delay_ms: int | None = None
    due_ms: int | None = None
    trace: str = ""
    reply: str = ""  # 'service/handler' that gets the outcome (reply-to), '' when none
    scheduled_ms: int | None = None  # the schedule tick this invocation is (cron), None when not
    flow_key: str = ""  # the flow key value a callable concurrency_key gave (store/flow.py), '' when none
    prio: str = ""  # 'high' | 'low'; '' is normal (reliq.store.priority)


class Registered(NamedTuple):
    """register.lua's answer for one invocation: ``state`` is the record's state (for
    ``previously_accepted`` and ``conflict``: the existing record's; '' for ``backpressure``
    and ``bad_key``: refused, nothing written (``bad_key``: the handler's flow key is missing
    from the input or not a string/integer))."""

    status: RegisterStatus
    state: State | Literal[""]


_PAIRS: dict[tuple[Any, Any], Registered] = {}  # (status, state) as replied -> its Registered


def _pair(status: Any, state: Any) -> Registered:
    got = Registered(as_register(status), as_state(state) if state else "")
    _PAIRS[(status, state)] = got  # checked: at most 5 statuses x 10 states (bytes or str) are kept
    return got


def pairs(reply: Sequence[Any]) -> list[Registered]:
    """register.lua's flat reply (2 values per invocation), in one pass: a pair seen before is
    one dict lookup (a batch of one handler answers the same pair for most items)."""
    it = iter(reply)
    return [_PAIRS.get(p) or _pair(*p) for p in zip(it, it, strict=True)]


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """claim.lua's answer for one entry. ``run``: start it; ``cancel``: claimed, but a cancel was
    requested (settle it as cancelled); ``compensate``: a cancel was requested of an invocation
    with a journal (run it so its handler sees ``Cancelled`` and may compensate); ``skip``:
    finished, unknown or a stale duplicate entry, already acked and deleted (only ``entry``,
    ``id`` and ``status`` are set)."""

    entry: str
    id: str
    status: ClaimStatus
    epoch: int = 0
    handler: str = ""
    payload: bytes = b""
    attempt: int = 0
    crashes: int = 0
    deliveries: int = 0
    parent: str | None = None
    key: str | None = None
    trace: str | None = None
    scheduled_ms: int | None = None


CLAIM_WIDTH = 11  # values per entry in claim.lua's reply


class Taken(NamedTuple):
    """take.lua's reply: the claims of the entries named, the id a next XREAD starts from (None:
    keep the last one), and the entries delivered that were not named (for a plain claim)."""

    claims: list[Claim]
    mark: str | None
    extra: list[tuple[str, str]]


def taken(entries: Sequence[tuple[str, str]], reply: Sequence[Any]) -> Taken:
    """take.lua's flat reply for ``entries`` (named, in call order): claim.lua's, the mark, then
    an (entry id, invocation id) pair per entry delivered and not named."""
    end = CLAIM_WIDTH * len(entries)
    if len(reply) <= end or (len(reply) - end) % 2 != 1:
        raise UnexpectedReply(f"take replied {len(reply)} values for {len(entries)} entries")
    rest = [text(x) for x in reply[end:]]
    extra = list(zip(rest[1::2], rest[2::2], strict=True))
    return Taken(claims(entries, reply[:end]), rest[0] or None, extra)


def claims(entries: Sequence[tuple[str, str]], reply: Sequence[Any]) -> list[Claim]:
    """claim.lua's flat reply for ``entries`` ((entry id, invocation id), in call order)."""
    if len(reply) != CLAIM_WIDTH * len(entries):
        raise UnexpectedReply(f"claim replied {len(reply)} values for {len(entries)} entries")
    out = []
    # read by index, no slice per entry, and the script's strings (bytes: the client does not
    # decode) decoded in place: this runs once per claimed invocation (the worker's hot path)
    for b, (eid, inv) in zip(range(0, len(reply), CLAIM_WIDTH), entries, strict=True):
        # status, epoch, handler, payload, attempt, crashes, parent, key, deliveries, trace, sched
        status = as_claim_status(reply[b])
        if status == "skip":
            out.append(Claim(entry=eid, id=inv, status=status))
        else:
            out.append(
                Claim(
                    entry=eid,
                    id=inv,
                    status=status,
                    epoch=int(reply[b + 1]),
                    handler=text(reply[b + 2]),
                    payload=bytes(reply[b + 3] or b""),
                    attempt=int(reply[b + 4]),
                    crashes=int(reply[b + 5]),
                    parent=reply[b + 6].decode() if reply[b + 6] else None,
                    key=reply[b + 7].decode() if reply[b + 7] else None,
                    deliveries=int(reply[b + 8]),
                    trace=reply[b + 9].decode() if reply[b + 9] else None,
                    scheduled_ms=int(reply[b + 10]) if reply[b + 10] else None,
                )
            )
    return out
