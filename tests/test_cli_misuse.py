"""Every misuse of the command line is one line on stderr and a non-zero exit (docs/operations.md,
the exit-status table), never a traceback, nothing written. The cases run in batches: one
process runs ``reliq.cli.main.main`` once per command line (a CLI start costs about 0.5 s), as the
interpreter would: an exception escaping it is a traceback and exit 1."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from reliq import Context, Service, Terminal
from reliq.devserver.embedded import free_port
from reliq.store import flow as fl

from .conftest import Names, client, running, wait_until

ROOT = Path(__file__).resolve().parents[1]
DEEP = "[" * 5000 + "]" * 5000
DRIVER = """
import contextlib, io, json, sys, traceback
from reliq.cli.main import main
out = []
for argv in json.load(sys.stdin):
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        try:
            main(argv)
            status = 0
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            status = 1
    out.append([status, err.getvalue(), std.getvalue()])
print(json.dumps(out))
"""


def batch(*argvs: list[str], env: dict[str, str] | None = None) -> list[tuple[int, str, str]]:
    """(exit status, stderr, stdout) of each command line, all run in one process."""
    done = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps(argvs),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [tuple(x) for x in json.loads(done.stdout)]


def check(argv: list[str], result: tuple[int, str, str], status: int, said: str) -> None:
    code, err, out = result
    lines = [line for line in err.splitlines() if line.strip()]
    assert (argv, code) == (argv, status), err
    assert len(lines) == 1 and "Traceback" not in err and not out, (argv, err, out)
    assert said in lines[0], (argv, lines[0])


def test_bad_values_are_usage_errors_before_anything_starts(tmp_path: Path) -> None:
    """Items checked while parsing (exit 2): nothing connects (the URL is dead), starts or writes."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    cases = [
        (["--log-level", "BOGUS", "get", "x.y"], "expected a level"),
        (["pending", "s", "--min-idle", "-5"], "--min-idle: expected a finite number of seconds >= 0"),
        (["pending", "s", "--min-idle", "inf"], "--min-idle"),
        (["pending", "s", "--min-idle", "nan"], "--min-idle"),
        (["send", "s", "h", "1", "--delay", "-1"], "--delay"),
        (["worker", ".mod:app"], "'.mod' is not a module name"),
        (["worker", "../x:app"], "'../x' is not a module name"),
        (["worker", "x:app", "--processes", "0"], "--processes: expected an integer >= 1"),
        (["worker", "x:app", "--visibility-timeout", "0"], "--visibility-timeout"),
        (["gateway", "--port", "-5"], "--port: a port is an integer in 1..65535"),
        (["gateway", "--port", "70000"], "--port"),
        (["gateway", "--workers", "0"], "--workers"),
        (["dev", "--redis-port", "70000"], "--redis-port"),
        (["dev", "--port", "-1"], "--port"),
        (["dev", "--workers", "0"], "--workers: expected an integer >= 1"),
        (["redis", "--port", "0"], "--port"),
        (["gateway", "--durability", "bogus"], "--durability: expected none, fsync or replicas:N"),
        (["gateway", "--durability", "replicas:abc"], "--durability"),
        (["send", "s", "h", DEEP], "payload: JSON nested deeper than 64 levels"),
        (["send", "s", "h", "[" * 70 + "]" * 70], "nested deeper than 64"),
        (["resolve", "s.abcdefghijklmnopqrstuvwxyz", "p", DEEP], "value: JSON nested deeper"),
        (["redrive", "--all", "s", "--handler", "B/x"], "invalid handler name 'B/x'"),
        (["redrive", "--all", "s", "--limit", "0"], "--limit: expected an integer in 1..500"),
        (["parked", "s", "--limit", "-1"], "--limit"),
        (["suspended", "s", "--limit", "0"], "--limit"),
        (["limits", "show", "s", "--top", "-1"], "--top"),
        (["limits", "set", "s", "h", "--burst", "0"], "--burst"),
        (["--redis-url", "", "get", "x.y"], "the Redis URL is empty"),
        (["--redis-url", "redis://127.0.0.1:6379/abc", "get", "x.y"], "not a database number"),
        (["get", "x.y", "--redis-url", "redis://127.0.0.1:99999/0"], "not an integer in 1..65535"),
        (["--redis-url", "http://x", "get", "x.y"], "expected a Redis URL"),
        (["redis", "--port", str(free_port()), "--data-dir", "/etc/passwd"], "not a directory"),
        (["redis", "--port", str(free_port()), "--data-dir", "/proc/nope"], "cannot be the data directory"),
        (["dev", "--port", str(free_port()), "--data-dir", str(tmp_path / "f" / "d")], "not a directory"),
    ]
    (tmp_path / "f").write_text("a file")
    argvs = [["--redis-url", dead, *argv] for argv, _ in cases]
    for (argv, said), result in zip(cases, batch(*argvs), strict=True):
        check(argv, result, 2, said)
    env = {"RELIQ_DURABILITY": "x", "RELIQ_MAX_BODY": "abc"}
    durability, body = batch(["gateway"], ["gateway", "--durability", "fsync"], env=env)
    check(["gateway"], durability, 2, "--durability")
    check(["gateway"], body, 2, "reliq gateway: RELIQ_MAX_BODY must be an integer, not 'abc'")
    (grace,) = batch(["gateway", "--durability", "fsync"], env={"RELIQ_SHUTDOWN_GRACE": "ten"})
    check(["gateway"], grace, 2, "RELIQ_SHUTDOWN_GRACE must be a whole number of seconds, not 'ten'")


def test_a_server_that_refuses_is_one_line_and_exit_1(url: str) -> None:
    """A db out of range, a Cluster URL for a server that is not one (redis-py's own errors)."""
    some = "s.abcdefghijklmnopqrstuvwxyz"
    db, not_cluster, cluster_url = batch(
        ["--redis-url", url.rsplit("/", 1)[0] + "/99999", "get", some],
        ["--redis-url", url, "--cluster", "get", some],
        ["--redis-url", url.replace("redis://", "redis+cluster://").rsplit("/", 1)[0], "get", some],
    )
    check(["db"], db, 1, "DB index is out of range")
    check(["--cluster"], not_cluster, 1, "Cluster mode is not enabled")
    check(["redis+cluster://"], cluster_url, 1, "RedisClusterException")


async def test_redrive_and_discard_refuse_what_they_cannot_act_on(url: str, names: Names) -> None:
    """Exit 1 (a refusal), no audit entry; limits clear of an unknown handler is refused (exit 2)
    unless an override of it is stored."""
    svc = Service(names())

    @svc.handler
    async def fail(ctx: Context) -> None:
        raise Terminal("no")

    @svc.handler
    async def idle(ctx: Context) -> None:
        return None

    async with client(url) as c:
        async with running(svc, url):
            failed = (await c.send(svc.name, "fail")).id
            await wait_until(lambda: c.parked(svc.name), what="parked")
        pending = (await c.send(svc.name, "idle")).id  # no worker: it stays pending
        k = c.keys(svc.name)
        flow = f"reliq:{{{svc.name}}}:flow"
        stale = fl.encode(fl.FlowOverride(rate=5, per=1000))  # of a handler that left the code
        await c.scripts.set_limits(k, "gone", stale, "")
        before = await c.redis.xlen(k.audit)
        u = ["--redis-url", url]
        results = await asyncio.to_thread(
            batch,
            [*u, "redrive", pending],
            [*u, "discard", pending],
            [*u, "limits", "clear", svc.name, "nosuchhandler"],
            [*u, "discard", failed],
            [*u, "discard", failed],
            [*u, "limits", "clear", svc.name, "gone"],
        )
        check(["redrive"], results[0], 1, f"{pending}: not_failed (state pending)")
        check(["discard"], results[1], 1, f"{pending}: not_parked (state pending)")
        check(["limits clear"], results[2], 2, "no handler")
        assert results[3][0] == 0, results[3]
        check(["discard again"], results[4], 1, "not_parked (state failed)")
        assert results[5][0] == 0 and await c.redis.hget(flow, "gone!") is None, results[5]
        audit = [f[b"action"] for _, f in await c.redis.xrange(k.audit)][before:]
        assert audit == [b"discard", b"limits-clear"], audit  # only what happened
        assert await c.state(pending) == "pending"
        await c.cancel(pending)
