"""``Client.send_many``: many invocations of one handler, placed with one ``register.lua`` call per
partition per chunk of at most ``MAX_BATCH`` (the gateway's group commit uses the same calls).

Everything is checked before anything is written: names, each idempotency key, the options, each
payload's encoding and, for a flow-keyed handler, each item's flow key (a bad one raises and
nothing is placed). Then the items are grouped by partition (``Client.where``): the partitions
are written concurrently, the chunks of one partition in input order.

Each item is answered on its own, as ``Client.send`` would answer it alone: same key + same
payload -> the same id, ``previously_accepted``. When every item is accepted, ``send_many``
returns their ``Accepted`` in input order. Otherwise it raises ``BatchError`` once every chunk is
answered: ``results[i]`` is item i's ``Accepted`` or the exception ``send`` would have raised for
it (``IdempotencyConflict``, ``Backpressure``, ``ValueError`` for a flow key refused by the
script, or the Redis error of its chunk's call: that chunk may or may not be written; re-sending
items that have keys converges). The accepted items stay placed: re-send only ``failed``.

Backpressure: per partition, in input order, each new item takes a place while the partition has
room (``max_queued``); the new items past it get ``Backpressure`` (nothing written for them), while
a re-send of an accepted key still answers ``previously_accepted``. Other partitions are unaffected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from reliq import codec
from reliq.client import producer, replyto, routing
from reliq.client.producer import MAX_BATCH, SendOptions, Where
from reliq.context import target_of
from reliq.errors import Backpressure, IdempotencyConflict, ReliqError
from reliq.store import flow
from reliq.store.batch import Batch
from reliq.store.keys import check_name
from reliq.store.priority import Priority, check_priority
from reliq.store.record import Accepted

if TYPE_CHECKING:
    from reliq.client import Client


class ManyArgs(TypedDict, total=False):
    """The options of ``Client.send_many``: ``keys`` per item, the others for every item."""

    keys: Sequence[str | None] | None  # idempotency keys, one per payload (None: no key)
    delay: float | timedelta | None  # seconds (or a timedelta) from now
    at: datetime | None  # due time (aware)
    reply_to: tuple[str, str] | str | None  # ("service", "handler") that gets each outcome
    callback_url: str | None  # POST each outcome there (client/callbacks.py); not with reply_to
    priority: Priority | None  # "high" | "normal" | "low"; None: the handler's default


class BatchError(ReliqError):
    """Some items of a ``send_many`` were not accepted; the others were placed and stay placed.

    ``results[i]``: item i's ``Accepted``, or the exception ``Client.send`` would have raised for
    it (``IdempotencyConflict``, ``Backpressure``, ...). ``failed`` and ``accepted`` index them."""

    def __init__(self, service: str, results: list[Accepted | Exception]) -> None:
        self.service = service
        self.results = results
        self.failed = {i: r for i, r in enumerate(results) if isinstance(r, Exception)}
        self.accepted = {i: r for i, r in enumerate(results) if isinstance(r, Accepted)}
        kinds: dict[str, int] = {}
        for e in self.failed.values():
            kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1
        first, err = next(iter(self.failed.items()))
        super().__init__(
            f"{len(self.failed)} of {len(results)} items sent to {service} not accepted "
            f"({', '.join(f'{n} {k}' for k, n in kinds.items())}; first: item {first}: {err})"
        )


async def send_many(
    client: Client, service: Any, handler: Any, payloads: Any = None, /, **opts: Unpack[ManyArgs]
) -> list[Accepted]:
    """``Client.send_many``: by names (``service, handler, payloads``) or by reference to the
    handler function (``fn, payloads``; a callable concurrency key is computed per item)."""
    flow_keys = None
    if not isinstance(service, str):
        ref, payloads = service, handler
        service, handler = target_of(ref)
        items = _items(payloads)
        keyfn = getattr(ref, "__reliq_flow_key__", None)
        if keyfn is not None:
            flow_keys = [_flow_key(keyfn, p, i) for i, p in enumerate(items)]
    else:
        items = _items(payloads)
    bodies = list(map(codec.json_encoder.encode, items))  # codec.encode, without a frame per item
    return await place(client, service, handler, bodies, flow_keys, opts)


def _flow_key(keyfn: Any, payload: Any, i: int) -> str:
    try:
        return flow.key_value(keyfn(payload))
    except ValueError as e:
        raise ValueError(f"item {i}: {e}") from None


def _items(payloads: Any) -> list[Any]:
    if isinstance(payloads, str | bytes | bytearray | Mapping) or not isinstance(payloads, Iterable):
        raise TypeError(f"send_many takes a list (an iterable) of payloads, not {type(payloads).__name__}")
    return list(payloads)


def _keys(keys: Sequence[str | None] | None, n: int) -> list[str | None]:
    if keys is None:
        return [None] * n
    if isinstance(keys, str | bytes) or len(keys) != n:
        raise ValueError(f"keys must be a list of one idempotency key (or None) per payload ({n})")
    return [None if k is None else codec.check_key(k) for k in keys]


async def place(
    client: Client,
    service: str,
    handler: str,
    bodies: list[bytes],
    flow_keys: Sequence[str | None] | None,
    opts: ManyArgs,
) -> list[Accepted]:
    """Place encoded payloads (see the module docstring)."""
    if unknown := opts.keys() - ManyArgs.__annotations__.keys():  # e.g. key= for keys=: never ignored
        raise TypeError(f"send_many got unexpected options: {', '.join(sorted(unknown))}")
    check_name("service", service)
    check_name("handler", handler)
    keys = _keys(opts.get("keys"), len(bodies))
    reply_to, prio, delay = opts.get("reply_to"), opts.get("priority"), producer.seconds(opts.get("delay"))
    if (url := opts.get("callback_url")) is not None:  # its reply target (the host checked)
        reply_to = producer.with_callback(SendOptions(callback_url=url, reply_to=reply_to)).get("reply_to")
    delay_ms = None if delay is None else int(delay * 1000)
    due = producer.due_ms(opts.get("at"), time.time())
    reply = "" if reply_to is None else replyto.target(reply_to)
    level = "" if prio is None else check_priority(prio)
    if not bodies:
        return []
    ids, parts = await routing.ids_for(client, service, handler, bodies, keys, flow_keys)
    items = Batch(
        handler=handler,
        ids=ids,
        fps=codec.fingerprints(handler, bodies),
        payloads=bodies,
        keys=None if opts.get("keys") is None else [k or "" for k in keys],
        flow_keys=None if flow_keys is None else [k or "" for k in flow_keys],
        delay_ms=delay_ms,
        due_ms=due,
        reply=reply,
        prio=level,
    )
    results: list[Accepted | Exception] = [Exception("not answered")] * len(ids)
    if min(parts) == max(parts):  # one partition (always, on a one-partition service)
        await _partition(client, (service, parts[0]), range(len(ids)), items, results)
    else:
        groups: dict[int, list[int]] = {}
        for i, part in enumerate(parts):
            groups.setdefault(part, []).append(i)
        await asyncio.gather(
            *(_partition(client, (service, p), idx, items, results) for p, idx in groups.items())
        )
    if any(isinstance(r, Exception) for r in results):
        raise BatchError(service, results)
    return results  # type: ignore[return-value]  # all Accepted: checked above


async def _partition(
    client: Client, where: Where, idx: Sequence[int], items: Batch, results: list[Accepted | Exception]
) -> None:
    """Place one partition's items, chunk by chunk in input order. A chunk whose call fails gives
    its error to its items and to every later item of the partition (those were not sent)."""
    service, handler, ids = where[0], items.handler, items.ids
    whole = len(idx) == len(ids) <= MAX_BATCH  # the batch as it is: no copy
    for start in range(0, len(idx), MAX_BATCH):
        chunk = idx[start : start + MAX_BATCH]
        try:
            answers = await client.register_many(where, items if whole else items.take(chunk))
        except Exception as e:
            for i in idx[start:]:
                results[i] = e
            return
        for i, answer in zip(chunk, answers, strict=True):
            try:
                results[i] = producer.accepted(service, handler, ids[i], answer)
            except (IdempotencyConflict, Backpressure, ValueError) as e:
                results[i] = e
