"""The invocation record (``reliq:{S}:inv:<id>``) and the status document built from it."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from reliq.codec import decode

State = Literal["scheduled", "pending", "running", "retrying", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a failed attempt left behind."""

    type: str
    message: str
    traceback: str = ""
    status: int | None = None


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """Answer to a send: the invocation id, and whether this call created it."""

    id: str
    status: Literal["accepted", "previously_accepted"]
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
    idempotency_key: str | None = None
    reason: str | None = None
    cancel_requested: bool = False
    redrives: int = 0
    discarded: int | None = None
    payload: Any = None
    result: Any = None
    error: ErrorInfo | None = None
    steps: dict[str, Any] = {}
    children: list[str] = []


_error_decoder = msgspec.json.Decoder(ErrorInfo)


def _int(v: bytes | None) -> int | None:
    return int(v) if v else None


def _str(v: bytes | None) -> str | None:
    return v.decode() if v else None


def parse(
    invocation_id: str, h: dict[bytes, bytes], steps: dict[bytes, bytes], children: list[bytes]
) -> Invocation:
    """Build the status document from the raw hashes read from Redis."""
    state = h[b"state"].decode()
    err = h.get(b"error")
    return Invocation(
        id=invocation_id,
        service=h[b"service"].decode(),
        handler=h[b"handler"].decode(),
        state=state,  # type: ignore[arg-type]
        attempt=int(h.get(b"attempt", 1)),
        deliveries=int(h.get(b"deliveries", 0)),
        crashes=int(h.get(b"crashes", 0)),
        epoch=int(h.get(b"epoch", 0)),
        owner=_str(h.get(b"owner")),
        lease_until=_int(h.get(b"lease_until")),
        next_retry=_int(h.get(b"due")) if state == "retrying" else None,
        due=_int(h.get(b"due")),
        created=_int(h.get(b"created")),
        updated=_int(h.get(b"updated")),
        started=_int(h.get(b"started")),
        finished=_int(h.get(b"finished")),
        parent_id=_str(h.get(b"parent")),
        traceparent=_str(h.get(b"trace")),
        idempotency_key=_str(h.get(b"key")),
        reason=_str(h.get(b"reason")),
        cancel_requested=h.get(b"cancel") == b"1",
        redrives=int(h.get(b"redrives", 0)),
        discarded=_int(h.get(b"discarded")),
        payload=decode(h.get(b"payload")),
        result=decode(h.get(b"result")),
        error=_error_decoder.decode(err) if err else None,
        steps={k.decode(): decode(v) for k, v in steps.items()},
        children=[c.decode() for c in children],
    )
