"""Read an invocation's timeline: the record field ``tl`` that the Lua scripts append to in the
same call as each transition (format and cap: ``lua/lib/timeline.lua``).

>>> parse_timeline(b'[1700000000000,"accepted","",0,"pending"]\\n[1700000000005,"claimed","w1",1]')[1].actor
'w1'
"""

from __future__ import annotations

from typing import Any

import msgspec

from reliq.admin.documents import Event

_decode_line = msgspec.json.Decoder(list[Any]).decode


def _opt_int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and v else None


def _opt_str(v: Any) -> str | None:
    return str(v) if v not in (None, "", 0) else None


def parse_timeline(raw: bytes | None) -> list[Event]:
    """Events oldest first; a malformed line is skipped rather than failing the whole view."""
    events: list[Event] = []
    for line in (raw or b"").splitlines():
        try:
            a = _decode_line(line)
        except msgspec.DecodeError:
            continue
        if len(a) < 2 or not isinstance(a[0], int | float) or not isinstance(a[1], str):
            continue
        a = a + [None] * (7 - len(a))
        events.append(
            Event(
                at=int(a[0]),
                event=a[1],
                actor=_opt_str(a[2]),
                epoch=_opt_int(a[3]),
                detail=_opt_str(a[4]),
                until=_opt_int(a[5]),
                count=_opt_int(a[6]),
            )
        )
    return events
