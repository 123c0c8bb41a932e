"""``reliq.logformat.Throttle``: a warning repeated by a loop (a Redis outage) is let through
once per template every ``REPEAT_S`` seconds, and the next one says how many were held back;
other warnings, errors and info lines pass untouched."""

from __future__ import annotations

import logging

from reliq.logformat import Throttle


def _record(level: int, msg: str, *args: object, name: str = "reliq.worker.cron") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_warning_passes_once_per_period_and_counts_the_rest() -> None:
    now = [0.0]
    t = Throttle(every=10.0, clock=lambda: now[0])
    loop = "tick loop of %s failed: %s"
    passed = []
    for i in range(25):  # one a second, two services: the same template
        now[0] = float(i)
        r = _record(logging.WARNING, loop, f"svc{i % 2}", "ConnectionError")
        if t.filter(r):
            passed.append(r.getMessage())
    assert passed == [
        "tick loop of svc0 failed: ConnectionError",
        "tick loop of svc0 failed: ConnectionError (9 more like this in the last 10 s)",
        "tick loop of svc0 failed: ConnectionError (9 more like this in the last 10 s)",
    ]
    other = _record(logging.WARNING, "lease on %s lost", "x")  # another template: its own period
    error = _record(logging.ERROR, loop, "svc0", "boom")
    info = _record(logging.INFO, loop, "svc0", "fine")
    assert t.filter(other) and t.filter(error) and t.filter(info)
    assert error.getMessage() == "tick loop of svc0 failed: boom"  # errors are never held or changed
