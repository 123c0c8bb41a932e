"""Instructions the gateway process executes per ``POST /send`` over HTTP, counted by valgrind's
callgrind: a figure this machine's noise cannot move (wall-clock CPU time drifts by 2x between
sessions here), for comparing two checkouts of the gateway; ``load_tests/instructions_per_task.py``
counts the worker's and Valkey's per drained invocation the same way.

An embedded Valkey (AOF, ``appendfsync always``) runs outside valgrind; the gateway
(``reliq gateway --app load_tests.noop_app:bench --durability fsync``, uvloop and httptools as in
production) runs under ``valgrind --tool=callgrind --instr-atstart=no``. This process is the
client: 64 keep-alive connections, each sending ``POST /send/bench/noop`` with body ``null`` and
reading the 202 before the next. After ``--warmup`` requests per connection (caches, the Valkey
connection, the code's first runs), instrumentation is switched on (``callgrind_control -i on``),
``--n`` requests are sent, and instrumentation is switched off and the counts dumped; the counted
instructions (``Ir``) divided by ``--n`` are the figure. Repeated runs agree within about 2% (how
many requests share a group commit varies a little); compare medians of a few, alternated. Needs
``valgrind`` (``apt-get install -y valgrind``).

The gateway that runs is the one on ``PYTHONPATH``, so the same file measures another checkout:

    PYTHONPATH=. python load_tests/gateway_instructions.py
    PYTHONPATH=/path/to/other python load_tests/gateway_instructions.py
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from selectors import EVENT_READ, DefaultSelector

from reliq.devserver.embedded import EmbeddedValkey, free_port

CONNECTIONS = 64
REQUEST = (
    b"POST /send/bench/noop HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 4\r\n\r\nnull"
)


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the gateway did not get ready")


def drive(port: int, each: int) -> None:
    """``each`` requests on every connection, one in flight per connection; every answer a 202."""
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
    left = {c: each for c in conns}
    sel = DefaultSelector()
    for c in conns:
        sel.register(c, EVENT_READ, b"")
        c.sendall(REQUEST)
    while left:
        for key, _ in sel.select(timeout=120):
            c = key.fileobj
            assert isinstance(c, socket.socket)
            got = key.data + c.recv(65536)
            end = got.find(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", got[:end]) if end >= 0 else None
            if length is None or len(got) < end + 4 + int(length.group(1)):
                sel.modify(c, EVENT_READ, got)
                continue
            assert got.startswith(b"HTTP/1.1 202"), got[:200]
            sel.modify(c, EVENT_READ, b"")
            left[c] -= 1
            if left[c]:
                c.sendall(REQUEST)
            else:
                del left[c]
                sel.unregister(c)
                c.close()


def control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1280, help="requests counted (a multiple of 64)")
    p.add_argument("--warmup", type=int, default=10, help="requests per connection before counting")
    p.add_argument("--keep", type=Path, help="copy the callgrind dump here (for callgrind_annotate)")
    a = p.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install -y valgrind")
    with tempfile.TemporaryDirectory() as d, EmbeddedValkey(data_dir=Path(d) / "valkey") as server:
        port, out = free_port(), Path(d) / "callgrind.out"
        gateway = [sys.executable, "-m", "reliq", "--redis-url", server.url, "--log-level", "WARNING"]
        app = ["--app", "load_tests.noop_app:bench", "--durability", "fsync"]
        gateway += ["gateway", "--port", str(port), *app]
        vg = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        with open(Path(d) / "gateway.log", "wb") as log:
            proc = subprocess.Popen([*vg, *gateway], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(port, proc)
            drive(port, a.warmup)
            control(proc.pid, "-i", "on")
            drive(port, a.n // CONNECTIONS)
            control(proc.pid, "-i", "off")
            control(proc.pid, "-d")
        finally:
            proc.terminate()
            proc.wait(120)
        total = 0
        for dump in Path(d).glob("callgrind.out*"):
            m = re.search(r"^totals: (\d+)", dump.read_text(errors="replace"), re.M)
            total += int(m.group(1)) if m else 0
            if m and int(m.group(1)) and a.keep is not None:
                shutil.copy(dump, a.keep)
    n = a.n // CONNECTIONS * CONNECTIONS
    print(f"gateway: {total / n:,.0f} instructions per POST /send ({n} requests counted)")


if __name__ == "__main__":
    main()
