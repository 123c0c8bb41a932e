"""Schedules: what one is (``Schedule``, stored as JSON in ``reliq:{S}:schedules``) and the tick
arithmetic the workers' tick loop runs (``plan``). Pure: no Redis here.

A schedule fires on a cron expression (5 fields, or 6 with seconds first: ``*/5 * * * * *``,
parsed by ``croniter`` in the schedule's time zone, so DST is the library's, not ours) or every
``every`` seconds (ticks at multiples of the interval since the unix epoch). Each tick is one
invocation whose id derives from (schedule, tick time) (``keys.tick_id``).

Missed ticks (no worker ran, or the clock jumped) follow ``catch_up``: ``latest`` places only the
last one, ``all`` the last ``max_catch_up`` of them in order, ``none`` none (a tick counts as
missed when it is more than ``grace`` late; ticks on time are always placed).

>>> s = Schedule(name="nightly", handler="report", cron="0 3 * * *", tz="Europe/Berlin").checked()
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import CroniterError, croniter

from reliq.errors import ReliqError
from reliq.store.keys import InvalidName, check_name

CatchUp = Literal["latest", "all", "none"]
MAX_EVERY = 366 * 24 * 3600.0
MAX_CATCH_UP = 1000
MAX_TZ = 64  # the longest IANA name is about 30 characters


class InvalidSchedule(ValueError, ReliqError):
    """A schedule that cannot be stored; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ScheduleConflict(ValueError, ReliqError):
    """Another schedule by that name exists (create it under another name, or delete it first)."""


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """One schedule of a service: fire ``handler`` with ``payload`` on ``cron`` (in ``tz``) or
    ``every`` seconds. ``origin`` is ``code`` for ``@svc.cron`` (workers re-declare it at start)
    and ``api`` for one created at run time."""

    name: str
    handler: str
    cron: str | None = None
    every: float | None = None
    tz: str = "UTC"
    catch_up: CatchUp = "latest"
    max_catch_up: int = 10
    payload: Any = None
    origin: Literal["code", "api"] = "api"

    def checked(self) -> Schedule:
        """The schedule itself if valid; raises ``InvalidSchedule`` naming the field otherwise."""
        try:
            check_name("schedule", self.name)
        except InvalidName as e:
            raise InvalidSchedule("name", str(e)) from None
        try:
            check_name("handler", self.handler)
        except InvalidName as e:
            raise InvalidSchedule("handler", str(e)) from None
        if (self.cron is None) == (self.every is None):
            raise InvalidSchedule("cron", "give exactly one of cron and every")
        tz = zone(self.tz)
        if self.cron is not None:
            _occurs(self.cron, tz)
        if self.every is not None and not 1 <= self.every <= MAX_EVERY:
            raise InvalidSchedule("every", f"must be between 1 s and {MAX_EVERY:.0f} s")
        if self.catch_up not in ("latest", "all", "none"):
            raise InvalidSchedule("catch_up", "must be latest, all or none")
        if not 1 <= self.max_catch_up <= MAX_CATCH_UP:
            raise InvalidSchedule("max_catch_up", f"must be between 1 and {MAX_CATCH_UP}")
        return self


def zone(tz: str) -> ZoneInfo:
    """The IANA time zone ``tz``; ``InvalidSchedule('tz', ...)`` when there is none by that name
    (also a directory of the zone database such as ``America``, or a name too long for a path)."""
    if isinstance(tz, str) and len(tz) > MAX_TZ:
        raise InvalidSchedule("tz", f"unknown time zone {tz[:20]!r}... ({len(tz)} characters)")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):  # OSError: IsADirectoryError
        raise InvalidSchedule("tz", f"unknown time zone {tz!r}") from None


def _occurs(expr: str, tz: ZoneInfo) -> None:
    """``InvalidSchedule('cron', ...)`` for an expression that parses but names no time that
    occurs (``0 0 30 2 *``: 30 February): its ticks could never be planned. Cron has no year
    field, so its times repeat within 28 years (croniter looks 50 years both ways)."""
    it = _iterator(expr, 0.0, tz)
    try:
        it.get_next(float)
        it.get_prev(float)
    except (CroniterError, ValueError, OverflowError) as e:
        raise InvalidSchedule("cron", f"{expr!r} never occurs ({e})") from None


def _iterator(expr: str, start_ms: float, tz: ZoneInfo) -> Any:
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise InvalidSchedule("cron", f"{expr!r}: give 5 fields, or 6 with seconds first")
    start = datetime.fromtimestamp(start_ms / 1000, tz)
    try:
        return croniter(expr, start, second_at_beginning=True)
    except (CroniterError, ValueError, KeyError) as e:
        raise InvalidSchedule("cron", f"{expr!r}: {e}") from None


def previous(s: Schedule, at_ms: int) -> Iterator[int]:
    """The ticks at or before ``at_ms`` (unix ms), newest first (without end)."""
    if s.every is not None:
        step = int(s.every * 1000)
        t = at_ms - at_ms % step
        while True:
            yield t
            t -= step
    it = _iterator(s.cron or "", at_ms + 1, zone(s.tz))  # +1 ms: a tick at at_ms counts
    while True:
        yield round(it.get_prev(float) * 1000)


def following(s: Schedule, after_ms: int) -> int:
    """The first tick strictly after ``after_ms``."""
    if s.every is not None:
        step = int(s.every * 1000)
        return after_ms - after_ms % step + step
    nxt: float = _iterator(s.cron or "", after_ms, zone(s.tz)).get_next(float)
    return round(nxt * 1000)


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """What the tick loop does for one schedule now: place ``ticks`` (ascending), move the cursor
    to ``cursor`` (the last tick decided, placed or skipped) and look again at ``next_fire``."""

    ticks: list[int]
    cursor: int
    next_fire: int


def plan(s: Schedule, cursor: int, now_ms: int, grace_ms: int) -> Plan:
    """The ticks in (``cursor``, ``now_ms``] to place. Ticks at most ``grace_ms`` late are on time
    and always placed; older ones were missed, and the catch-up policy picks among them:
    ``latest`` the newest (only when no tick is on time), ``all`` the newest ``max_catch_up``,
    ``none`` nothing."""
    on_time: list[int] = []
    missed: list[int] = []
    want = {"latest": 1, "all": s.max_catch_up, "none": 0}[s.catch_up]
    newest = cursor
    for t in previous(s, now_ms):
        if t <= cursor:
            break
        newest = max(newest, t)
        if now_ms - t <= grace_ms and len(on_time) < MAX_CATCH_UP:
            on_time.append(t)
            continue
        if s.catch_up == "latest" and on_time:
            break
        if len(missed) >= want:
            break
        missed.append(t)
    return Plan(ticks=sorted(on_time + missed), cursor=newest, next_fire=following(s, now_ms))


class ScheduleInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A schedule and where it stands (``Client.schedules``; the admin API and the CLI show it).
    Times are unix ms: ``last_tick`` the last tick decided (placed, or skipped by the catch-up
    policy), ``next_fire`` the next time the tick loop looks at it (None while paused)."""

    service: str
    schedule: Schedule
    paused_since: int | None = None
    last_tick: int | None = None
    last_id: str | None = None
    last_state: str | None = None
    next_fire: int | None = None


encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder(Schedule).decode
