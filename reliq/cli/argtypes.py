"""The command line's value types, checked while parsing: a bad value is a usage error (one line
on stderr, exit 2) before anything connects, starts or writes.

``Parser`` is ``argparse.ArgumentParser`` with that one line instead of the usage block. Each
other function is an argparse ``type=`` (it also applies to a default read from ``RELIQ_*``):

>>> port("70000")
ArgumentTypeError: a port is an integer in 1..65535, not '70000'
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit

import msgspec

from reliq.store.keys import InvalidName, check_name

MAX_DEPTH = 64  # JSON nesting the CLI accepts: the gateway's limit (GatewaySettings.max_depth)
PAGE = (1, 500)  # --limit of the list views and bulk redrive
_REPLICAS = re.compile(r"replicas:[1-9][0-9]?\Z")  # as gateway.settings reads it
_any = msgspec.json.Decoder()


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (``reliq pending: argument --limit: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _bad(text: str, what: str) -> NoReturn:
    raise argparse.ArgumentTypeError(f"{what}, not {text!r}")


def integer(low: int, high: int | None = None, what: str | None = None) -> Callable[[str], int]:
    """An integer in ``low..high`` (no upper bound without ``high``)."""
    span = f"in {low}..{high}" if high is not None else f">= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            _bad(text, f"{what or 'expected an integer'} {span}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its own messages
    return parse


port = integer(1, 65535, "a port is an integer")
page_limit = integer(*PAGE)
positive = integer(1)
count = integer(0)


def seconds(*, positive: bool = False) -> Callable[[str], float]:
    """A finite number of seconds, >= 0 (or > 0 with ``positive``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            _bad(text, f"expected a finite number of seconds {'> 0' if positive else '>= 0'}")
        return value

    parse.__name__ = "seconds"
    return parse


def log_level(text: str) -> str:
    """A level name of ``logging`` (any case): DEBUG, INFO, WARNING, ERROR, CRITICAL."""
    if text.upper() not in logging.getLevelNamesMapping():
        _bad(text, "expected a level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return text.upper()


def durability(text: str) -> str:
    """``none``, ``fsync`` or ``replicas:N`` (N in 1..99), as the gateway reads it."""
    if text not in ("none", "fsync") and not _REPLICAS.match(text):
        _bad(text, "expected none, fsync or replicas:N (N in 1..99)")
    return text


def handler_name(text: str) -> str:
    """A well-formed handler name (``reliq.store.keys.check_name``)."""
    try:
        return check_name("handler", text)
    except InvalidName as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def redis_url(text: str) -> str:
    """A Redis URL redis-py reads as written: not empty, a known scheme, a numeric port and db.
    (redis-py reads a db path like ``/abc`` as db 0, and an empty URL as localhost.)"""
    scheme, sep, _ = text.partition("://")
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "the Redis URL is empty (RELIQ_REDIS_URL unset: redis://127.0.0.1:6379/0)"
        )
    if not sep or scheme.removesuffix("+cluster") not in ("redis", "rediss", "unix"):
        _bad(text, "expected a Redis URL like redis://HOST:PORT/DB (redis, rediss, unix, redis+cluster)")
    if scheme == "unix":
        return text
    parts = urlsplit(text)
    for host in parts.netloc.rpartition("@")[2].split(","):
        _, colon, number = host.strip().rpartition(":")
        if "]" in number or not colon:  # no port (an IPv6 literal alone): the default
            continue
        if not (number.isascii() and number.isdigit() and 0 < int(number) < 65536):
            _bad(text, f"the port {number!r} is not an integer in 1..65535")
    db = parts.path.strip("/")
    if db and not (db.isascii() and db.isdigit()):
        _bad(text, f"the path {parts.path!r} is not a database number (like /0)")
    return text


def json_value(what: str, text: str) -> Any:
    """The JSON ``text`` decodes to; ``ValueError`` naming ``what`` if it does not parse or is
    nested deeper than ``MAX_DEPTH`` (a ``RecursionError`` in the decoder included)."""
    try:
        value = _any.decode(text.encode())
    except (msgspec.DecodeError, RecursionError) as e:
        if isinstance(e, RecursionError):
            raise ValueError(f"{what}: JSON nested deeper than {MAX_DEPTH} levels") from None
        raise ValueError(f"{what}: malformed JSON ({e})") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise ValueError(f"{what}: JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth, iteratively, stopping past ``MAX_DEPTH``."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def die(command: str, message: str, status: int = 2) -> NoReturn:
    """One line on stderr and exit ``status`` (2: the command line is wrong)."""
    print(f"reliq {command}: {message}", file=sys.stderr)
    raise SystemExit(status)
