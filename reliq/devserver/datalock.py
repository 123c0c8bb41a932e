"""One server per data directory. Two Valkeys started on one directory would both append to the
same AOF and corrupt it, so every embedded server (``reliq redis``, ``reliq dev``,
``EmbeddedValkey``) first takes an exclusive ``flock`` on ``DATA_DIR/reliq.lock`` and holds it for
the server's whole life: the lock's file descriptor is inherited by ``valkey-server`` (and kept by
``reliq redis`` across its ``exec``), so the lock goes away only when the server has exited. The
file holds the pid of the process that took it, for the refusal's message.

>>> fd = lock_data_dir(Path(".reliq/data"))   # DataDirInUse while another server runs there
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_FILE = "reliq.lock"


class DataDirInUse(RuntimeError):
    """Another embedded server holds the data directory's lock."""


class DataDirUnusable(ValueError):
    """The path cannot be a data directory: a file, not creatable, not writable (a usage error)."""


def lock_data_dir(data_dir: Path) -> int:
    """Create ``data_dir`` if needed and lock it; the lock's file descriptor (not inheritable:
    pass it on to the server with ``pass_fds``, or ``os.set_inheritable`` before an ``exec``).
    Closing every descriptor of it releases the lock. Raises ``DataDirInUse``, or
    ``DataDirUnusable`` when the directory cannot be created or the lock file not written."""
    path = data_dir / LOCK_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        why = "it is not a directory" if isinstance(e, FileExistsError | NotADirectoryError) else e.strerror
        raise DataDirUnusable(f"{data_dir} cannot be the data directory: {why}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise DataDirInUse(f"{data_dir} is in use by another server ({holder}lock {path})") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f"pid {int(os.pread(fd, 32, 0))}; "
    return ""
