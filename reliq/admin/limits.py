"""The flow limits of a service as operators see and change them (issue 14): the specs in force
(the code's, published by workers, and an operator's override), the busiest keys (holders and
waiters), the rate buckets, and the intake (``reliq.admin.intake``: max_queued in force, the
backlog per priority level); ``set_limits`` / ``clear_limits`` change a handler's limits on a
live service.

A change is one script per partition (``set_limits.lua``): the override field ``<handler>!`` of
``reliq:{S}:flow`` is written (or deleted) and the waiters a raised limit lets in are admitted in
the same call, so it takes effect at once, on every worker, without a restart (the scripts read
the spec on each call). The change is audited under the caller's name.

Costs: two pipelines per view: per partition the spec hash, the holders per key (``fl:count``:
one field per key that holds, absent when idle) and the first ``MAX_BUCKETS`` live rate buckets;
then one ``ZLEXCOUNT`` of the wait set per key that holds (the waiters of a key: a key with
waiters always has a holder, since a release hands its permit to the next waiter in the same
script).

>>> await set_limits(client, "orders", "charge", LimitsChange(concurrency_limit=2), who="ops")
>>> (await limits(client, "orders")).handlers
"""

from __future__ import annotations

import msgspec

from reliq.admin import intake as _intake
from reliq.admin.paging import scope
from reliq.client import Client
from reliq.codec import text
from reliq.store import flow
from reliq.store.keys import check_name

MAX_BUCKETS = 100
TOP = 20


class HandlerLimits(msgspec.Struct, frozen=True, kw_only=True):
    """One handler's limits: ``code`` (as published by its workers), ``override`` (an operator's,
    or None) and ``effective`` (the override merged over the code's: what the scripts apply)."""

    handler: str
    code: flow.FlowSpec | None
    override: flow.FlowOverride | None
    effective: flow.FlowSpec
    text: str


class KeyLoad(msgspec.Struct, frozen=True, kw_only=True):
    handler: str
    key: str
    running: int  # holders of a permit
    waiting: int  # in the key's line
    partition: int = 0


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    """A live rate bucket (GCRA): ``tat`` its theoretical arrival time; ``next_free`` when the next
    start may run (now, when ``tokens`` > 0); ``tokens`` starts allowed at once now."""

    handler: str
    key: str | None
    tat: int
    next_free: int
    tokens: int
    partition: int = 0


class FlowState(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    now: int
    handlers: list[HandlerLimits]
    top_keys: list[KeyLoad]  # by waiting, then running (at most ``top``)
    keys: int  # keys that hold or wait, in all
    running: int  # permits held
    queued: int  # invocations in key lines
    buckets: list[Bucket]
    drift: list[int] = []  # partitions whose specs differ from partition 0's (a change under way)
    intake: _intake.Intake | None = None  # max_queued in force and the backlog per priority level


class LimitsChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An operator's change (the admin API's JSON body): unset fields keep their current value;
    ``concurrency_limit`` 0 and ``rate_limit`` ``"0/s"`` lift that limit."""

    concurrency_limit: int | None = None
    rate_limit: str | None = None
    burst: int | None = None
    suspended_keeps_permit: bool | None = None


def merged(code: flow.FlowSpec | None, override: flow.FlowOverride | None) -> flow.FlowSpec:
    """What ``fl_spec`` (lua/lib/flow.lua) applies: the override's set fields over the code's."""
    base = code or flow.FlowSpec()
    if override is None:
        return base
    given = {n: v for n, v in msgspec.structs.asdict(override).items() if v is not None}
    return msgspec.structs.replace(base, **given)


def describe(s: flow.FlowSpec) -> str:
    """A spec in a few words: ``key account: 1 at once; 100/s, burst 10 per key``."""
    parts = []
    if s.limit and s.key:
        parts.append(f"{s.limit} at once per {s.key}")
    if s.rate and s.per:
        unit = {1000: "s", 60_000: "min", 3_600_000: "h"}.get(s.per, f"{s.per}ms")
        parts.append(f"{s.rate}/{unit}, burst {s.burst}" + (f" per {s.key}" if s.rkeyed else ""))
    return "; ".join(parts) or "no limit"


def _specs(raw: dict[bytes, bytes]) -> dict[str, tuple[flow.FlowSpec | None, flow.FlowOverride | None]]:
    out: dict[str, tuple[flow.FlowSpec | None, flow.FlowOverride | None]] = {}
    for name, value in sorted(raw.items()):
        field = text(name)
        handler = field.rstrip("!")
        code, over = out.get(handler, (None, None))
        try:
            if field.endswith("!"):
                over = flow.decode_override(value)
            else:
                code = flow.decode_spec(value)
        except msgspec.DecodeError:
            continue  # a field this version cannot read is shown as absent
        out[handler] = (code, over)
    return out


def _bucket(name: str, tat: float, spec: flow.FlowSpec, now: int, part: int) -> Bucket:
    handler, _, key = name.partition("\0")
    t = spec.per / spec.rate if spec.rate and spec.per else 0.0
    burst = max(1, spec.burst)
    free = max(now, int(tat - (burst - 1) * t))
    tokens = burst if t == 0 else max(0, min(burst, int((now - tat) / t + burst)))
    return Bucket(
        handler=handler, key=key or None, tat=int(tat), next_free=free, tokens=tokens, partition=part
    )


async def limits(
    client: Client, service: str, *, handler: str | None = None, top: int = TOP, partition: int | None = None
) -> FlowState:
    """The flow state of ``service`` (only ``handler``'s rows with it given)."""
    sc = await scope(client, service, partition)
    now = await client.server_time_ms()  # not in the pipeline: a Cluster pipeline refuses TIME
    async with client.redis.pipeline(transaction=False) as p:
        for k in sc.keys:
            spec, _held, count, wait, tat = flow.flow_keys(k)[:5]
            p.hgetall(spec)
            p.hgetall(count)
            p.zcard(wait)
            p.zrange(tat, 0, MAX_BUCKETS - 1, withscores=True)
        replies = await p.execute()
        per = [replies[4 * n : 4 + 4 * n] for n in range(len(sc.keys))]
    holders = [{text(f): int(v) for f, v in r[1].items()} for r in per]
    async with client.redis.pipeline(transaction=False) as p:
        for k, c in zip(sc.keys, holders, strict=True):
            for fk in c:
                p.zlexcount(flow.flow_keys(k)[3], "[" + fk + "\0", "(" + fk + "\1")
        counted = iter(await p.execute())
    specs = _specs(per[0][0]) if per else {}
    drift = [k.partition for k, r in zip(sc.keys, per, strict=True) if _specs(r[0]) != specs]
    loads: list[KeyLoad] = []
    buckets: list[Bucket] = []
    queued = running = 0
    for k, (_, _counts, nq, tats), c in zip(sc.keys, per, holders, strict=True):
        queued += int(nq)
        w = {fk: int(next(counted)) for fk in c}
        running += sum(c.values())
        for fk in c:
            h, _, key = fk.partition("\0")
            if handler is None or h == handler:
                loads.append(
                    KeyLoad(
                        handler=h, key=key, running=c.get(fk, 0), waiting=w.get(fk, 0), partition=k.partition
                    )
                )
        for name, score in tats:
            b = text(name)
            if score > now and (handler is None or b.partition("\0")[0] == handler):
                code, over = specs.get(b.partition("\0")[0], (None, None))
                buckets.append(_bucket(b, score, merged(code, over), now, k.partition))
    loads.sort(key=lambda x: (-x.waiting, -x.running, x.handler, x.key))
    rows = [
        HandlerLimits(
            handler=h,
            code=code,
            override=over,
            effective=merged(code, over),
            text=describe(merged(code, over)),
        )
        for h, (code, over) in specs.items()
        if handler is None or h == handler
    ]
    return FlowState(
        service=service,
        now=now,
        handlers=rows,
        top_keys=loads[: max(1, min(top, 500))],
        keys=len(loads),
        running=running,
        queued=queued,
        buckets=buckets,
        drift=drift,
        intake=await _intake.read(client, sc),
    )


async def _current(
    client: Client, service: str, handler: str, *, strict: bool = True
) -> tuple[flow.FlowSpec | None, flow.FlowOverride | None]:
    k = client.keys(service)
    async with client.redis.pipeline(transaction=False) as p:
        p.hmget(flow.flow_keys(k)[0], [handler, handler + "!"])
        p.hexists(k.registry, handler)
        raw, registered = await p.execute()
    if strict and not raw[0] and not registered:
        raise ValueError(f"no handler {service}.{handler} is registered")
    return _specs({name.encode(): v for name, v in zip((handler, handler + "!"), raw, strict=True) if v}).get(
        handler, (None, None)
    )


def _checked(
    change: LimitsChange, code: flow.FlowSpec | None, before: flow.FlowOverride | None
) -> flow.FlowOverride:
    """The new override: ``change`` over the one in force; ``ValueError`` for a bad value."""
    c = change
    if c == LimitsChange():
        raise ValueError(
            "nothing to change: give concurrency_limit, rate_limit, burst or suspended_keeps_permit"
        )
    if c.concurrency_limit is not None:
        if type(c.concurrency_limit) is not int or not 0 <= c.concurrency_limit <= 1_000_000:
            raise ValueError(f"concurrency_limit must be an integer 0-1000000, not {c.concurrency_limit!r}")
        if c.concurrency_limit and not (code and code.key):
            raise ValueError("concurrency_limit needs a concurrency_key: the handler's code declares none")
    if c.burst is not None and (type(c.burst) is not int or not 1 <= c.burst <= 1_000_000):
        raise ValueError(f"burst must be an integer 1-1000000, not {c.burst!r}")
    rate = per = None
    if c.rate_limit is not None:
        rate, per = (0, 1000) if c.rate_limit.strip().startswith("0/") else flow.parse_rate(c.rate_limit)
    given = {
        "limit": c.concurrency_limit,
        "rate": rate,
        "per": per,
        "burst": c.burst,
        "keep": c.suspended_keeps_permit,
    }
    base = before or flow.FlowOverride()
    return msgspec.structs.replace(base, **{n: v for n, v in given.items() if v is not None})


async def set_limits(
    client: Client, service: str, handler: str, change: LimitsChange, *, who: str
) -> HandlerLimits:
    """Change ``handler``'s limits on every partition of ``service`` (merged with an override in
    force); ``ValueError`` for a bad change, nothing written. Returns the limits now in force."""
    check_name("service", service)
    check_name("handler", handler)
    code, before = await _current(client, service, handler)
    override = _checked(change, code, before)
    for k in await client.partition_keys(service):
        await client.scripts.set_limits(k, handler, flow.encode(override), who)
    eff = merged(code, override)
    return HandlerLimits(handler=handler, code=code, override=override, effective=eff, text=describe(eff))


async def clear_limits(client: Client, service: str, handler: str, *, who: str) -> HandlerLimits:
    """Remove the operator's override of ``handler``: the code's limits apply again. A handler
    that is not registered, has no limits in code and no override is a ``ValueError`` (nothing
    written, nothing audited); a stale override of a handler gone from the code stays clearable."""
    check_name("service", service)
    check_name("handler", handler)
    code, before = await _current(client, service, handler, strict=False)
    registered = await client.redis.hget(client.keys(service).registry, handler)
    if code is None and before is None and registered is None:
        raise ValueError(f"no handler {service}.{handler} is registered")
    for k in await client.partition_keys(service):
        await client.scripts.set_limits(k, handler, b"", who)
    code, _ = await _current(client, service, handler, strict=False)
    eff = merged(code, None)
    return HandlerLimits(handler=handler, code=code, override=None, effective=eff, text=describe(eff))
