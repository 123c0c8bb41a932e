"""Failpoints for crash tests: ``RELIQ_FAILPOINTS=after_register:exit`` makes the process die
(``os._exit(137)``, like a SIGKILL) at that point. Unset in production: a set lookup per call."""

from __future__ import annotations

import os

_ACTIVE = frozenset(p.split(":", 1)[0] for p in os.environ.get("RELIQ_FAILPOINTS", "").split(",") if p)


def hit(name: str) -> None:
    if name in _ACTIVE:
        os._exit(137)
