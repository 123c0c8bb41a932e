"""Flow control as stored: per-key concurrency limits and rate limits (issue 14).

A handler declares them (``@svc.handler(concurrency_key=..., concurrency_limit=..., rate_limit=...)``);
workers publish the spec in every partition at start; the scripts read it with one HMGET per
handler and call, so Redis is the authority and a change takes effect at once. The mechanics are
in ``lua/lib/flow.lua``.

Per partition (same hash tag as the partition's stream):

=========================  ======  ==============================================================
key                        type    content
=========================  ======  ==============================================================
``reliq:{S}:flow``         hash    ``<handler>`` = the code's ``FlowSpec`` (JSON), written by
                                   workers at start; ``<handler>!`` = an operator's
                                   ``FlowOverride`` (JSON), merged over it (deleting it restores
                                   the code's values). No field: no limit applies.
``reliq:{S}:fl:held``      hash    invocation id -> flow key (``handler NUL value``): the
                                   invocations that hold a per-key permit (every started
                                   invocation of a keyed handler, whatever its limit)
``reliq:{S}:fl:count``     hash    flow key -> number of holders
``reliq:{S}:fl:wait``      zset    score 0, lex order, members ``fk NUL seq NUL prio NUL id``
                                   (``seq``: 16 digits, registration order): the invocations
                                   waiting for a permit (state ``queued``, no stream entry);
                                   the waiters of one key: ``ZLEXCOUNT [fk\0 (fk\1``
``reliq:{S}:fl:tat``       zset    rate bucket (``handler``, or ``handler NUL value`` for a keyed
                                   rate) -> theoretical arrival time (ms, GCRA); a time in the
                                   past is pruned on use; the key expires after its last bucket
=========================  ======  ==============================================================

The fl:* hashes and the wait set are empty (absent) once no invocation of any key holds or waits
for a permit: only a terminal transition (or a suspension, by the handler's rule) gives a permit
back, in the same script that hands it to the next waiter of the key.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import msgspec

from reliq.errors import ReliqError
from reliq.store.keys import ServiceKeys, key_token

_UNITS = {"s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "hour": 3_600_000}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")
CALLABLE = "()"  # FlowSpec.key of a key computed by a callable (by the registrar, in Python)
MAX_KEY = 256  # bytes of a key value
BAD_KEY = "the flow key (concurrency_key/rate_key) is missing or not a string/integer; nothing placed"


class FlowSpec(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One handler's limits as published in ``reliq:{S}:flow``. ``key``: the input field the
    invocations are grouped by (``"()"``: a callable the registrar evaluates); ``limit``: at most
    this many of one key run at once (0: no limit); ``keep``: a suspended invocation keeps its
    permit; ``rate`` starts per ``per`` ms (0: no rate limit), ``burst`` of them at once;
    ``rkeyed``: one bucket per key value (else one for the handler)."""

    key: str = ""
    limit: int = 0
    keep: bool = True
    rate: int = 0
    per: int = 0
    burst: int = 1
    rkeyed: bool = False


class FlowOverride(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An operator's change of a handler's limits (``<handler>!``); unset fields keep the code's.
    ``limit=0`` or ``rate=0`` lifts that limit."""

    limit: int | None = None
    keep: bool | None = None
    rate: int | None = None
    per: int | None = None
    burst: int | None = None


encode = msgspec.json.Encoder().encode
decode_spec = msgspec.json.Decoder(FlowSpec).decode
decode_override = msgspec.json.Decoder(FlowOverride).decode


def parse_rate(rate: str) -> tuple[int, int]:
    """``"100/s"`` -> (100, 1000): starts per period in ms. Units: s, sec, m, min, h, hour."""
    m = _RATE.match(rate) if isinstance(rate, str) else None
    if not m or m.group(2) not in _UNITS or int(m.group(1)) < 1:
        raise ValueError(f"rate_limit {rate!r}: use 'N/s', 'N/min' or 'N/h' with N >= 1")
    return int(m.group(1)), _UNITS[m.group(2)]


def input_fields(input_type: Any) -> set[str] | None:
    """The field names of a typed input (msgspec Struct, dataclass, TypedDict); None when the type
    does not say (dict, Any)."""
    if isinstance(input_type, type) and issubclass(input_type, msgspec.Struct):
        return {f.encode_name for f in msgspec.structs.fields(input_type)}
    if hasattr(input_type, "__dataclass_fields__"):
        return set(input_type.__dataclass_fields__)
    if isinstance(input_type, type) and hasattr(input_type, "__required_keys__"):
        return set(input_type.__annotations__)
    return None


def build(
    *,
    takes_input: bool,
    input_type: Any,
    concurrency_key: str | Callable[[Any], Any] | None = None,
    concurrency_limit: int | None = None,
    suspended_keeps_permit: bool = True,
    rate_limit: str | None = None,
    rate_key: str | None = None,
    burst: int | None = None,
) -> FlowSpec | None:
    """A handler's spec from its decorator options, checked (``ValueError`` naming the option)."""
    if concurrency_key is None and concurrency_limit is None and rate_limit is None:
        if rate_key is not None or burst is not None:
            raise ValueError("rate_key and burst need rate_limit")
        return None
    if concurrency_limit is not None and (type(concurrency_limit) is not int or concurrency_limit < 1):
        raise ValueError(f"concurrency_limit must be an int >= 1, not {concurrency_limit!r}")
    if (concurrency_key is None) != (concurrency_limit is None):
        raise ValueError("concurrency_key and concurrency_limit go together")
    if burst is not None and (type(burst) is not int or burst < 1):
        raise ValueError(f"burst must be an int >= 1, not {burst!r}")
    if rate_limit is None and (rate_key is not None or burst is not None):
        raise ValueError("rate_key and burst need rate_limit")
    if rate_key is not None and concurrency_key is not None and rate_key != concurrency_key:
        raise ValueError("rate_key must be the same field as concurrency_key (one routing key)")
    key = concurrency_key if concurrency_key is not None else rate_key
    name = ""
    if key is not None:
        if not takes_input:
            raise ValueError("concurrency_key/rate_key: the handler takes no input")
        if callable(key):
            name = CALLABLE
        elif not isinstance(key, str) or not key:
            raise ValueError(f"concurrency_key/rate_key must be a field name or a callable, not {key!r}")
        else:
            fields = input_fields(input_type)
            if fields is not None and key not in fields:
                raise ValueError(f"concurrency_key/rate_key {key!r}: the input type has no such field")
            name = key
    rate, per = parse_rate(rate_limit) if rate_limit is not None else (0, 0)
    return FlowSpec(
        key=name,
        limit=concurrency_limit or 0,
        keep=bool(suspended_keeps_permit),
        rate=rate,
        per=per,
        burst=burst or 1,
        rkeyed=rate_limit is not None and rate_key is not None,
    )


def key_value(value: Any) -> str:
    """A flow key value as the scripts compare it: a str, or an int (as its decimal); else
    ``ValueError`` (what register.lua answers ``bad_key`` for)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"flow key must be a string or an integer, not {type(value).__name__}")
    if isinstance(value, int) and abs(value) >= 2**53:
        raise ValueError("flow key integer out of range (|n| < 2**53)")
    text = str(value)
    if "\0" in text or len(text.encode()) > MAX_KEY:
        raise ValueError(f"flow key must be at most {MAX_KEY} bytes without NUL")
    return text


def flow_token(service: str, handler: str, value: str | None = None) -> str:
    """The token whose partition all invocations of one flow key (``handler``, key ``value``)
    take on a multi-partition service (``value=None``: a keyless rate limit, the whole handler).
    Derived like an idempotency key's token from a key no client can send (NUL is refused)."""
    return key_token(service, "\0flow\0" + handler + ("" if value is None else "\0" + value))


class BadKey(ValueError, ReliqError):
    """An invocation's flow key is missing or invalid: refused before anything is written."""


def merged(code: bytes | None, override: bytes | None) -> FlowSpec | None:
    """A handler's spec as the scripts see it (``fl_spec``): the code's, the override's fields
    over it (never its key); None when neither exists. An unreadable value counts as absent."""
    if code is None and override is None:
        return None
    try:
        spec = decode_spec(code) if code is not None else FlowSpec()
    except msgspec.DecodeError:
        spec = FlowSpec()
    try:
        o = decode_override(override) if override is not None else FlowOverride()
    except msgspec.DecodeError:
        o = FlowOverride()
    changes = {f: v for f in FlowOverride.__struct_fields__ if (v := getattr(o, f)) is not None}
    return msgspec.structs.replace(spec, **changes) if changes else spec


def payload_key(spec: FlowSpec, body: bytes, given: str | None) -> str:
    """The key value of an invocation as register.lua computes it (``fl_key``): ``given`` (a
    callable's value, computed by the registrar), else the payload's field ``spec.key`` (a JSON
    number counts when integral). ``BadKey`` when there is none or it is not valid."""
    if given:
        value: Any = given
    elif spec.key == CALLABLE:
        raise BadKey(BAD_KEY)
    else:
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise BadKey(BAD_KEY) from None
        value = doc.get(spec.key) if isinstance(doc, dict) else None
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
    try:
        return key_value(value)
    except ValueError:
        raise BadKey(BAD_KEY) from None


def flow_keys(k: ServiceKeys) -> tuple[str, ...]:
    """The block of keys the scripts bind with ``fl_bind``: spec, held, count, wait, tat,
    and the partition's three streams (normal, high, low: where an admitted waiter goes)."""
    return _flow_keys(k.prefix)


@functools.lru_cache(maxsize=4096)
def _flow_keys(p: str) -> tuple[str, ...]:
    return (
        *(p + "flow", p + "fl:held", p + "fl:count", p + "fl:wait", p + "fl:tat"),
        *(p + "stream", p + "stream:high", p + "stream:low"),
    )
