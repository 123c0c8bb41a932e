"""What ``register.lua`` receives for a batch: one msgpack argument holding, per invocation, its
array ``f`` (id, fingerprint, handler, parent, idempotency key, delay ms, due ms, traceparent, and
when set: reply target, schedule tick, priority, flow key value) and its payload.

Two shapes: a sequence of ``Registration`` (one invocation each, every option its own:
``Client.send``, the gateway's group commit, reply-to), packed as those pairs; or a ``Batch``
(``Client.send_many``: one handler's invocations that share every option), packed as columns: the
array they share once, then ids, fingerprints, keys, flow keys and payloads, so neither the
client nor the script builds an array per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from reliq.store.replies import Registration

_pack = msgspec.msgpack.Encoder().encode


class Batch(msgspec.Struct, frozen=True, kw_only=True):
    """Invocations of one handler with the same options, as columns (one entry per item)."""

    handler: str
    ids: list[str]
    fps: list[str]
    payloads: list[bytes]
    keys: list[str] | None = None  # idempotency keys ('' none); None: no item has one
    flow_keys: list[str] | None = None  # a callable concurrency key's value per item ('' none)
    delay_ms: int | None = None
    due_ms: int | None = None
    reply: str = ""  # 'service/handler' that gets each outcome, '' when none
    prio: str = ""  # 'high' | 'low'; '' is the handler's default

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, idx: Sequence[int]) -> Batch:
        """The items at ``idx``, in that order."""

        def pick(col: list[str] | None) -> list[str] | None:
            return None if col is None else [col[i] for i in idx]

        return msgspec.structs.replace(
            self,
            ids=[self.ids[i] for i in idx],
            fps=[self.fps[i] for i in idx],
            payloads=[self.payloads[i] for i in idx],
            keys=pick(self.keys),
            flow_keys=pick(self.flow_keys),
        )


Items = Sequence[Registration] | Batch


def ids(items: Items) -> list[str]:
    """The invocation ids of ``items``, in order (their records are the script's KEYS)."""
    return items.ids if isinstance(items, Batch) else [r.id for r in items]


def packed(items: Items) -> bytes:
    """``items`` as register.lua's batch argument."""
    return _pack(_batch(items) if isinstance(items, Batch) else _registrations(items))


def _ms(v: int | None) -> str:
    return "" if v is None else str(v)


def _text(payload: bytes) -> str | msgspec.Raw:
    """A payload as a msgpack str (the scripts' cmsgpack has no bin type): the JSON as text, or,
    for bytes that are not UTF-8, the same bytes under a str32 header."""
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return msgspec.Raw(b"\xdb" + len(payload).to_bytes(4, "big") + payload)


def _registrations(items: Sequence[Registration]) -> list[tuple[str, ...] | str | msgspec.Raw]:
    out: list[tuple[str, ...] | str | msgspec.Raw] = []
    for r in items:
        f: tuple[str, ...] = (r.id, r.fp, r.handler, r.parent, r.key, _ms(r.delay_ms), _ms(r.due_ms), r.trace)
        if r.reply or r.scheduled_ms is not None or r.prio or r.flow_key:  # optional: only when set
            f += (r.reply, _ms(r.scheduled_ms), r.prio)
        if r.flow_key:  # position 12: a callable key's value, computed by the registrar
            f += (r.flow_key,)
        out += (f, _text(r.payload))
    return out


def _batch(b: Batch) -> list[Any]:
    """Columns: the array every item shares (id, fingerprint, key and flow key set per item by
    register.lua), then ids, fingerprints, keys, flow keys ([] when none) and payloads."""
    f = ("", "", b.handler, "", "", _ms(b.delay_ms), _ms(b.due_ms), "", b.reply, "", b.prio, "")
    return [f, b.ids, b.fps, b.keys or [], b.flow_keys or [], [_text(p) for p in b.payloads]]
