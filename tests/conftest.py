"""Test harness: one real embedded Valkey per session (AOF, appendfsync always); each test works
on its own service names; every test ends with a key-leak check on those services.

One real local Valkey Cluster (3 primaries, 1 replica each) is started per session, lazily, for the
tests that need it: ``tests/cluster`` and every test marked ``@pytest.mark.semantics``, which runs
once per backend (``[single]`` and ``[cluster]``: its ``url`` is the server's or the Cluster's)."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
import uvloop
from redis.cluster import ClusterNode, RedisCluster

from reliq import App, Client, Service, Worker, WorkerConfig
from reliq.devserver.cluster import EmbeddedCluster
from reliq.devserver.embedded import EmbeddedValkey
from reliq.store.record import TERMINAL
from reliq.store.topology import is_cluster_url

BACKENDS = ("single", "cluster")
# every `reliq worker` a test starts is one process (its pid is the worker's: SIGKILL/SIGSTOP it)
# unless the test asks for --processes N; the default would be one per core
os.environ.setdefault("RELIQ_PROCESSES", "1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "semantics: a core semantics test, run against one server and against a Cluster"
    )
    config.addinivalue_line(
        "markers", "slow: builds or installs something (seconds, not minutes); still part of `make test`"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "url" in metafunc.fixturenames and metafunc.definition.get_closest_marker("semantics"):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on a fresh uvloop event loop (no plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        kwargs = {n: pyfuncitem.funcargs[n] for n in names}
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        passed = False
        try:
            loop.run_until_complete(pyfuncitem.obj(**kwargs))
            passed = True
        finally:
            # cancel what the test left behind, bounded: redis-py can swallow a CancelledError
            # (redis-py#2028), so cancel again until the tasks end or 10 s pass; never wait on
            # stray executor threads at close
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            deadline = time.monotonic() + 10
            while pending and time.monotonic() < deadline:
                for t in pending:
                    t.cancel()
                loop.run_until_complete(asyncio.wait(pending, timeout=0.5))
                for t in pending:
                    if t.done() and not t.cancelled():
                        t.exception()  # retrieved: no "exception was never retrieved" noise
                pending = [t for t in pending if not t.done()]
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), 5))
            # uvloop hangs in close() when an "unclosed transport" ResourceWarning is raised as an
            # error (filterwarnings = error): record them instead; a passing test still fails
            with warnings.catch_warnings(record=True) as unclosed:
                warnings.simplefilter("always", ResourceWarning)
                loop.close()
            asyncio.set_event_loop(None)
            if passed and unclosed:
                raise AssertionError(f"left open at loop close: {[str(w.message) for w in unclosed]}")
        return True
    return None


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey(data_dir=tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """A real local Valkey Cluster: 3 primaries (slots split in thirds), 1 replica each, shared by
    every cluster test of the session (tests isolate themselves by service name)."""
    with EmbeddedCluster(tmp_path_factory.mktemp("cluster"), primaries=3, replicas=1) as c:
        yield c


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``single`` unless the test is marked ``semantics`` (then parametrized over both)."""
    return str(getattr(request, "param", "single"))


@pytest.fixture
def url(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "cluster":
        return str(request.getfixturevalue("cluster").url)
    return str(request.getfixturevalue("valkey").url)


class Names:
    """Unique service names for one test, remembered for the key-leak check."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def __call__(self, prefix: str = "t") -> str:
        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        self.used.append(name)
        return name


@pytest.fixture
def names(url: str) -> Iterator[Names]:
    n = Names()
    yield n
    leaks = leaked_keys(url, n.used)
    assert not leaks, f"keys without TTL left behind by finished work: {leaks}"


def sync_client(url: str) -> Any:
    """A blocking redis-py client for ``url``: a ``RedisCluster`` (routes each key to its node;
    ``scan_iter`` walks every primary) for a ``redis+cluster://`` URL."""
    if is_cluster_url(url):
        hosts = url.split("://", 1)[1].split(",")
        nodes = [ClusterNode(h.rpartition(":")[0], int(h.rpartition(":")[2])) for h in hosts]
        return RedisCluster(startup_nodes=nodes)
    return sync_redis.Redis.from_url(url)


def leaked_keys(url: str, services: list[str]) -> list[str]:
    """Per-invocation keys (record, steps, children) and heartbeats with no TTL whose invocation
    is finished (or gone), in every partition. Live invocations may keep their keys without TTL.
    Works key by key (no multi-key command), so it is safe on a Cluster."""
    r = sync_client(url)
    leaks: list[str] = []
    try:
        for s in services:
            # partition 0 is reliq:{S}:..., partition p >= 1 is reliq:{S:p}:...
            for pattern in (f"reliq:{{{s}}}:*", f"reliq:{{{s}:*}}:*"):
                for raw in r.scan_iter(match=pattern, count=1000):
                    key = raw.decode()
                    prefix, _, rest = key.partition("}:")
                    kind = rest.split(":", 1)[0]
                    if kind == "fl":
                        leaks += flow_leaks(r, prefix + "}:", key)
                        continue
                    if kind not in ("inv", "steps", "children", "inbox", "consumer") or r.pttl(key) != -1:
                        continue
                    if kind == "consumer":
                        leaks.append(key)
                        continue
                    inv = rest.split(":", 1)[1]
                    state = r.hget(f"{prefix}}}:inv:{inv}", "state")
                    if state is None or state.decode() in TERMINAL:
                        leaks.append(key)
    finally:
        r.close()
    return leaks


def flow_leaks(r: Any, prefix: str, key: str) -> list[str]:
    """A flow structure (store/flow.py) that names a finished invocation, or counts that disagree
    with the holders and waiters: a leaked permit. Checked once per partition (at fl:held)."""
    if key.endswith(":fl:tat"):
        return [] if r.pttl(key) != -1 else [key]
    if not key.endswith(":fl:held"):
        if r.exists(prefix + "fl:held") or r.exists(prefix + "fl:wait"):
            return []
        return [key]  # counts left without any holder or waiter
    held = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
    waiting = [m.decode().split("\0") for m in r.zrange(prefix + "fl:wait", 0, -1)]
    out = []
    for inv in [*held, *(m[-1] for m in waiting)]:
        state = r.hget(f"{prefix}inv:{inv}", "state")
        if state is None or state.decode() in TERMINAL:
            out.append(f"{key} names finished {inv}")
    counts = {k.decode(): int(v) for k, v in r.hgetall(prefix + "fl:count").items()}
    if counts != {fk: list(held.values()).count(fk) for fk in set(held.values())}:
        out.append(f"{prefix}fl:count {counts} disagrees with fl:held")
    return out


@pytest.fixture
def service(names: Names) -> Service:
    return Service(names())


@asynccontextmanager
async def running(app: App | Service, url: str, **config: Any) -> AsyncIterator[Worker]:
    """Run an in-process worker for the duration of the block."""
    cfg = {"visibility_timeout": 2.0, "heartbeat_interval": 0.5, "block": 0.2, **config}
    worker = Worker(app, url, config=WorkerConfig(**cfg))
    task = asyncio.create_task(worker.run())
    started = asyncio.create_task(worker.started.wait())
    done, _ = await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        started.cancel()
        task.result()
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 60)


@asynccontextmanager
async def client(url: str) -> AsyncIterator[Client]:
    c = Client(url)
    try:
        yield c
    finally:
        await c.close()


async def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = 0.005
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def kill_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGKILL every process still running and reap them all (crash tests' teardown)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
