"""The embedded Valkey is SIGKILLed and restarted under a running worker: nothing acked is lost,
and the worker reconnects and finishes the work."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError

from reliq import Client, Context, Service
from reliq.devserver.embedded import EmbeddedValkey, free_port

from ..conftest import Names, client, running, wait_until


async def succeeded_through_a_restart(
    c: Client, invocation_id: str, failed: list[BaseException] | None = None
) -> None:
    """Poll until the invocation succeeded; this client, too, sees the server go away meanwhile.
    ``failed``: errors of a restart in the background, surfaced here instead of a 30 s timeout."""

    async def succeeded() -> bool:
        assert not failed, failed
        try:
            doc = await c.get(invocation_id)
        except RedisConnectionError:
            return False
        return doc is not None and doc.state == "succeeded"

    await wait_until(succeeded, timeout=30, what="the invocation to succeed")


async def test_worker_survives_a_server_crash_and_restart(tmp_path: Path) -> None:
    server = EmbeddedValkey(data_dir=tmp_path).start()
    svc = Service("restart")
    done: list[str] = []

    @svc.handler
    async def job(ctx: Context, n: int) -> int:
        done.append(ctx.id)
        return n

    try:
        async with Client(server.url) as c:
            first = [(await c.send("restart", "job", i, key=f"a{i}")).id for i in range(50)]
        async with running(svc, server.url, visibility_timeout=1.0):
            async with Client(server.url) as c:
                for i in first:
                    await c.result(i, 20)
            server.kill()  # SIGKILL: AOF with appendfsync always keeps every acked write
            server.start()
            async with Client(server.url) as c:
                second = [(await c.send("restart", "job", i, key=f"b{i}")).id for i in range(50)]
                for i in second:
                    assert await c.result(i, 30) is not None
                states = {await c.state(i) for i in first + second}
                assert states == {"succeeded"}

                async def drained() -> bool:
                    return await c.redis.xlen("reliq:{restart}:stream") == 0

                await wait_until(drained, what="stream drained")
        assert len(set(done)) == 100
    finally:
        server.stop()


async def test_the_embedded_server_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    """A SIGKILLed `reliq dev` (or test run) must not leave a server holding its port and data dir."""
    script = (
        "import sys, time\n"
        "from reliq.devserver.embedded import EmbeddedValkey\n"
        "s = EmbeddedValkey(data_dir=sys.argv[1]).start()\n"
        "print(s.proc.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    assert parent.stdout is not None
    server_pid = int(parent.stdout.readline())
    parent.stdout.close()
    parent.kill()
    parent.wait()

    def gone() -> bool:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            return True
        # a zombie until init reaps it counts as gone
        with open(f"/proc/{server_pid}/stat") as f:
            return f.read().split()[2] == "Z"

    await wait_until(gone, timeout=10, what="valkey-server to exit after its parent was SIGKILLed")


async def test_a_worker_started_before_the_server_waits_for_it(tmp_path: Path, names: Names) -> None:
    service = names("late")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    env = {**os.environ, "RELIQ_E2E_SERVICE": service, "RELIQ_E2E_WITNESS": str(tmp_path / "witness")}
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115, ASYNC230
    worker = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "reliq", "--redis-url", url, "worker", "tests.e2e.app:app"],
        cwd=Path(__file__).parents[2],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        await wait_until(
            lambda: "waiting for it" in (tmp_path / "worker.log").read_text(), what="the worker to wait"
        )
        assert worker.poll() is None  # waiting, not exited
        with EmbeddedValkey(port=port, data_dir=tmp_path / "valkey"):
            async with client(url) as c:
                acc = await c.send(service, "slow", 0.0)
                assert (await c.result(acc.id, timeout=20)) == worker.pid
        assert (tmp_path / "worker.log").read_text().count("not reachable") == 1  # said once, not per retry
    finally:
        worker.terminate()
        worker.wait(30)


async def test_a_step_journal_write_waits_out_a_server_restart(tmp_path: Path) -> None:
    """The effect ran, then the server died before the step was journaled: the journal write
    waits for the server instead of failing the attempt, so the effect is not run again."""
    server = EmbeddedValkey(data_dir=tmp_path).start()
    svc = Service("journal")
    effects: list[int] = []
    restart_failed: list[BaseException] = []

    def restart() -> None:
        try:
            server.start()
        except Exception as e:  # surfaced by the poll below instead of a silent 90 s hang
            restart_failed.append(e)

    @svc.handler(max_attempts=5)
    async def pay(ctx: Context) -> str:
        async def charge() -> str:
            effects.append(ctx.attempt)
            if len(effects) == 1:  # crash the server between the effect and its journal entry
                server.kill()
                asyncio.get_running_loop().call_later(1.0, server.start)  # same port, AOF replay
            return "paid"

        return str(await ctx.step("charge", charge))

    try:
        async with running(svc, server.url), client(server.url) as c:
            acc = await c.send("journal", "pay")

            await succeeded_through_a_restart(c, acc.id, restart_failed)
            assert await c.result(acc.id) == "paid"
            doc = await c.get(acc.id)
            assert doc is not None and doc.attempt == 1 and doc.steps == {"charge": "paid"}
        assert effects == [1]  # one charge: the journal write waited out the restart
    finally:
        server.stop()


async def test_a_timer_journal_write_waits_out_a_server_restart(tmp_path: Path) -> None:
    """The server dies while the handler reaches a durable timer: journaling the timer's due time
    (``ctx.sleep``, a fenced first-value-stands write) waits for the server instead of failing
    the attempt over the outage, so the step before it is not replayed by a second attempt."""
    server = EmbeddedValkey(data_dir=tmp_path).start()
    svc = Service("timer")
    attempts: list[int] = []

    @svc.handler(max_attempts=5)
    async def wait_then_pay(ctx: Context) -> str:
        attempts.append(ctx.attempt)
        if len(attempts) == 1:  # the server goes away just before the timer is journaled
            server.kill()
            asyncio.get_running_loop().call_later(1.0, server.start)  # same port, AOF replay
        await ctx.sleep(0.01)
        return "paid"

    try:
        async with running(svc, server.url), client(server.url) as c:
            acc = await c.send("timer", "wait_then_pay")

            await succeeded_through_a_restart(c, acc.id)
            doc = await c.get(acc.id)
            assert doc is not None and doc.attempt == 1, doc
        assert attempts == [1]  # one run: the timer's journal write waited out the restart
    finally:
        server.stop()
