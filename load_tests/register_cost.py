"""What one registration costs the server, per item of a ``Client.send_many`` batch (B = 1, 100, 500;
no-op invocations ``bench.noop``, payload ``null``, nothing drains them):

- ``usec``: ``INFO commandstats`` time inside ``EVALSHA`` (``register.lua``) per item, on an
  embedded Valkey (AOF, ``appendfsync always``). Wall time inside the script: it moves with the
  machine's load, so compare runs made alternately.
- ``callgrind``: instructions the server executes per item (the whole server: parsing, script, AOF
  feed, reply; and of it inside ``EVALSHA``), with ``valkey-server`` run under
  ``valgrind --tool=callgrind`` and instrumented only while the batches run. Deterministic to a
  fraction of a percent; needs valgrind.

The reliq that runs is the one on ``PYTHONPATH``, so the same file measures another checkout:

    PYTHONPATH=. python load_tests/register_cost.py callgrind
    PYTHONPATH=/path/to/other python load_tests/register_cost.py callgrind
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey, binary_path, free_port

SERVICE, HANDLER = "bench", "noop"
BATCHES = {1: 1_000, 100: 20_000, 500: 20_000}  # batch size -> items sent (usec)
TRACED = {1: 300, 100: 3_000, 500: 4_000}  # the same under callgrind (~50x slower)


async def _send(c: Client, b: int, n: int) -> None:
    for _ in range(n // b):
        await c.send_many(SERVICE, HANDLER, [None] * b)


async def usec() -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedValkey(data_dir=tmp) as server:
        async with Client(server.url) as c:
            await _send(c, 100, 1_000)  # scripts loaded, layout cached
            for b, n in BATCHES.items():
                await c.redis.execute_command("CONFIG", "RESETSTAT")
                await _send(c, b, n)
                st = (await c.redis.info("commandstats"))["cmdstat_evalsha"]
                print(f"batch {b:3d}: {float(st['usec']) / n:6.2f} us per item inside EVALSHA")


def _totals(out: Path) -> tuple[int, int]:
    """(all instructions, inside evalShaCommand) of the callgrind dump ``out``."""
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(out)], capture_output=True, text=True)
    total = evalsha = 0
    for line in ann.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-1] == "TOTALS" and parts[-2] == "PROGRAM":
            total = int(parts[0].replace(",", ""))
        elif len(parts) >= 3 and parts[2].endswith(":evalShaCommand"):
            evalsha = int(parts[0].replace(",", ""))
    return total, evalsha


def _ctl(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


async def _drive(port: int, pid: int, b: int, n: int) -> None:
    """Batches of ``b`` to the traced server, instrumented only around the ``n`` items measured."""
    async with Client(f"redis://127.0.0.1:{port}") as c:
        deadline = time.monotonic() + 60
        while True:
            try:
                await c.redis.ping()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await _send(c, b, 5 * b)  # scripts loaded, layout cached
        await asyncio.to_thread(_ctl, pid, "-i", "on")
        await _send(c, b, n)
        await asyncio.to_thread(_ctl, pid, "-i", "off")
        await asyncio.to_thread(_ctl, pid, "-d")


def _traced(b: int, n: int) -> tuple[int, int]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        tool = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={tmp}/cg.out"]
        args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "", "--appendonly", "yes"]
        server = subprocess.Popen(
            [*tool, str(binary_path()), *args, "--appendfsync", "always"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(_drive(port, server.pid, b, n))
        finally:
            server.terminate()
            server.wait(30)
        return _totals(sorted(Path(tmp).glob("cg.out.*"))[0])


def callgrind() -> None:
    for b, n in TRACED.items():
        total, evalsha = _traced(b, n)
        print(f"batch {b:3d}: {total / n:9,.0f} server instructions per item, {evalsha / n:9,.0f} in EVALSHA")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["usec", "callgrind"])
    a = p.parse_args()
    if a.mode == "usec":
        asyncio.run(usec())
    else:
        callgrind()


if __name__ == "__main__":
    main()
