"""Debounce and throttle: sends with the same debounce key within a window collapse into one
invocation, which waits in the delayed set and runs once, after the window: with the latest payload
(``mode="debounce"``: every send pushes the due time to now + window and replaces the payload) or
the first (``mode="throttle"``: the window starts at the first send, later sends change nothing).

One script call per send (``lua/debounce.lua``), in the slot of the partition the debounce key
maps to: the key ``reliq:{S}:debounce:<token>`` (TTL window + 1 s) names the window's invocation
while it waits. The caller reads which invocation that is first and the script checks it still is
(``moved``: read again), so the script declares every key it touches. A send whose window's
invocation already left the delayed set (promoted, cancelled) opens a new window. Debounce keys
are not idempotency keys: they never refuse a different payload, and a window's invocation id is
fresh."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from reliq import codec
from reliq.client import replyto, routing
from reliq.errors import NotConfirmed
from reliq.store import flow
from reliq.store.debounce import Mode, Outcome, outcome
from reliq.store.keys import ServiceKeys, debounce_token, locate, make_id, new_id, partition_of_token
from reliq.store.priority import check_priority
from reliq.store.record import Accepted
from reliq.store.replies import Registration

if TYPE_CHECKING:
    from reliq.client import Client
    from reliq.client.producer import SendOptions

MAX_WINDOW = 24 * 3600.0  # seconds
MODES = ("debounce", "throttle")
_ROUNDS = 16  # rounds when the key moved under the caller (a window opened or ended meanwhile)


def window_ms(window: float | timedelta) -> int:
    """The window in ms: more than 0 and at most ``MAX_WINDOW`` seconds, else ``ValueError``."""
    s = window.total_seconds() if isinstance(window, timedelta) else window
    if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s) or s <= 0:
        raise ValueError("debounce must be a positive number of seconds")
    if s > MAX_WINDOW:
        raise ValueError(f"debounce window longer than {MAX_WINDOW:.0f} s")
    return max(1, round(s * 1000))


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ValueError(f"mode must be 'debounce' or 'throttle', not {mode!r}")
    return cast(Mode, mode)


def check(options: SendOptions) -> tuple[int, str, Mode]:
    """(window ms, debounce key, mode) of a debounced send; ``ValueError`` for a bad or missing
    one, or for an option that cannot go with it (idempotency key, delay, at, a derived id)."""
    window, key = options.get("debounce"), options.get("debounce_key")
    if window is None or key is None:
        raise ValueError("a debounced send needs both debounce=seconds and debounce_key")
    clash = [o for o in ("key", "delay", "at", "invocation_id", "parent") if options.get(o) is not None]
    if clash:
        raise ValueError(f"debounce cannot be combined with {', '.join(clash)}")
    try:
        codec.check_key(key)
    except ValueError:
        raise ValueError("debounce_key must be 1-255 characters without control characters") from None
    return window_ms(window), key, check_mode(options.get("mode", "debounce"))


async def send(
    client: Client,
    service: str,
    handler: str,
    body: bytes,
    options: SendOptions,
    *,
    replicas: int = 0,
    wait_ms: int = 1000,
) -> Accepted:
    """Join or open the window of ``options["debounce_key"]`` (names already checked); the answer
    names the window's invocation, ``status`` ``accepted`` (this send opened it) or ``debounced``."""
    ms, dkey, mode = check(options)
    reply = options.get("reply_to")
    flow_key = options.get("flow_key") or ""
    token = debounce_token(service, handler, dkey)
    try:  # a keyed handler of a multi-partition service: its key's partition (client/routing.py)
        by = await routing.anchor(client, service, handler, body, flow_key)
    except flow.BadKey:
        raise flow.BadKey(f"{service}.{handler}: {flow.BAD_KEY}") from None
    k = client.keys(service, partition_of_token(by or token, (await client.layout(service)).partitions))
    key = k.debounce(token)
    fresh = make_id(service, locate(new_id(service))[2], k.partition)
    reg = Registration(
        id=fresh,
        fp=codec.fingerprint(handler, body),
        handler=handler,
        payload=body,
        delay_ms=ms,
        trace=options.get("trace") or "",
        reply="" if reply is None else replyto.target(reply),
        prio=check_priority(options["priority"]) if options.get("priority") else "",
        flow_key=flow_key,
    )
    seen = codec.text(await client.redis.hget(key, "id") or b"")
    for _ in range(_ROUNDS):
        out = await _run(client, k, key, seen, reg, mode, replicas, wait_ms)
        if out.status == "bad_key":
            raise flow.BadKey(f"{service}.{handler}: {flow.BAD_KEY}")
        if out.status != "moved":
            return Accepted(id=out.id, status=out.status, state=out.state)
        seen = out.id
    raise NotConfirmed("the debounce window kept moving; send again")


async def _run(
    client: Client,
    k: ServiceKeys,
    key: str,
    seen: str,
    reg: Registration,
    mode: Mode,
    replicas: int,
    wait_ms: int,
) -> Outcome:
    script = client.debounce_script
    if replicas == 0:
        out = await script(k, key, seen, reg, mode)
        assert out is not None
        return out
    node = await client.topology.node_for(k.stream)
    async with node.pipeline(transaction=False) as pipe:
        await script(k, key, seen, reg, mode, pipe=pipe)
        pipe.execute_command("WAIT", replicas, wait_ms)
        reply, acked = await pipe.execute()
    if int(acked) < replicas:
        raise NotConfirmed(f"only {int(acked)} of {replicas} replicas confirmed the write")
    return outcome(reply)
