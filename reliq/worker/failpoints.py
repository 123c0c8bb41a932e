"""Failpoints for crash tests: ``RELIQ_FAILPOINTS=after_complete,after_park`` makes the worker
SIGKILL itself right after that settle script call returned (``after_<complete|park|retry|
suspend>``), before anything else runs: no relay of the outbox message it wrote. Unset in
production: a set lookup per call. The gateway has its own (``gateway/failpoints.py``)."""

from __future__ import annotations

import os
import signal

_ACTIVE = frozenset(p.split(":", 1)[0] for p in os.environ.get("RELIQ_FAILPOINTS", "").split(",") if p)


def hit(name: str) -> None:
    if name in _ACTIVE:
        os.kill(os.getpid(), signal.SIGKILL)
