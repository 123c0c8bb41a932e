"""Logging setup for the CLI and every process it starts (a gateway's workers too): plain lines,
or one JSON object per line (``--log-format json``).

Warnings repeat: during a Redis outage every loop of a worker logs each failed round (about ten
lines a second with three services). ``Throttle`` lets one warning per (logger, message
template) through every ``REPEAT_S`` seconds; the next one let through says how many like it
were held back. Errors and anything below WARNING always pass."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import msgspec


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return msgspec.json.encode(doc).decode()


REPEAT_S = 10.0  # seconds between two warnings of one template
_MAX_TEMPLATES = 1000  # distinct templates remembered (f-string messages are all distinct)


class Throttle(logging.Filter):
    def __init__(self, every: float = REPEAT_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every, self.clock = every, clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # -> (last let through, held since)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        key, now = (record.name, str(record.msg)), self.clock()
        last, held = self._seen.get(key, (-math.inf, 0))
        if now - last < self.every:
            self._seen[key] = (last, held + 1)
            return False
        if len(self._seen) >= _MAX_TEMPLATES:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {now - last:.0f} s)"
        return True


def setup(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(Throttle())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
