"""``reliq`` command line: each command parses its arguments and makes one library call.

The grammar is in ``reliq.cli.parser``. The commands that run something (``worker``, ``dev``,
``gateway``, ``redis``) call ``reliq.worker.run``, ``reliq.devserver`` and the gateway (by name,
through ``reliq.loading``); the others print the JSON document of one ``Client`` call, or an
admin view (``reliq.cli.admin``). Every error a user can cause or meet ends with one line on
stderr and no traceback: exit 2 for the command line itself (a name that does not load, a missing
optional dependency, bad input: a malformed name, id, key or JSON, a payload that fails the
handler's schema, an unregistered service or handler), exit 1 for a refusal at run time (Redis
unreachable, a port in use, and every exception of ``reliq.errors``: backpressure, an idempotency
conflict, an unknown invocation...). A closed stdout (``reliq get ID | head -c 300``) ends quietly
with exit 141, as a process killed by SIGPIPE reports in a shell.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import msgspec
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from reliq import codec, errors
from reliq.cli import admin as cli_admin
from reliq.cli import argtypes
from reliq.cli import limits as cli_limits
from reliq.cli import schedules as cli_schedules
from reliq.cli import trees as cli_trees
from reliq.cli.logs import setup as setup_logs
from reliq.cli.parser import build_parser
from reliq.cli.sendcheck import check_send
from reliq.client import Client
from reliq.loading import LoadError, extra_for, load_app, serve_gateway
from reliq.store.priority import check_priority
from reliq.store.topology import as_cluster_url
from reliq.worker.config import WorkerConfig

__all__ = ["main"]

SIGPIPE_EXIT = 128 + 13  # what a shell reports for a process killed by SIGPIPE


def _partition_set(text: str | None) -> frozenset[int] | None:
    """``--partitions 0,2,5`` (or ``0-3``): the partitions this worker consumes."""
    if not text:
        return None
    out: set[int] = set()
    try:
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            out.update(range(int(lo), int(hi) + 1) if dash else [int(lo)])
    except ValueError:
        argtypes.die("worker", f"--partitions: expected numbers like 0,2 or 0-3, got {text!r}")
    return frozenset(out)


def _worker_config(a: argparse.Namespace) -> WorkerConfig:
    try:
        return WorkerConfig(
            partitions=_partition_set(getattr(a, "partitions", None)),
            concurrency=a.concurrency,
            batch=a.batch,
            readers=a.readers,
            min_concurrency=a.min_concurrency,
            max_concurrency=a.max_concurrency,
            visibility_timeout=a.visibility_timeout,
            shutdown_grace=a.shutdown_grace,
            heartbeat_interval=a.heartbeat_interval,
            consumer=a.consumer,
            retention=a.retention,
            suspend_after=a.suspend_after,
        )
    except ValueError as e:  # --min-concurrency above --max-concurrency and the like: a usage error
        argtypes.die(a.cmd, str(e))


async def _partitions(c: Client, service: str, count: int | None) -> Any:
    """The layout (after setting ``count``, if given), and on a Cluster the node of each partition."""
    lay = await c.set_partitions(service, count) if count is not None else await c.layout(service, fresh=True)
    nodes = {k.partition: await c.topology.owner(k.stream) for k in await c.partition_keys(service)}
    return {**msgspec.structs.asdict(lay), "nodes": nodes} if any(nodes.values()) else lay


async def _client_call(a: argparse.Namespace) -> Any:
    async with Client(a.redis_url) as c:
        if a.cmd == "send":
            payload = argtypes.json_value("payload", a.payload)
            if not a.no_check:  # what the gateway checks, before anything is written
                await check_send(c, a.service, a.handler, payload)
            acc = await c.send(a.service, a.handler, payload, key=a.key, delay=a.delay, priority=a.priority)
            return {"id": acc.id, "status": acc.status}
        if a.cmd == "get":
            return await c.get(a.id)
        if a.cmd == "partitions":
            return await _partitions(c, a.service, a.count)
        return await c.durability()


def _client_cmd(a: argparse.Namespace) -> None:
    if a.cmd == "send" and a.priority is not None:
        try:
            check_priority(a.priority)
        except ValueError as e:  # a usage error, like argparse's (exit 2), before any connection
            print(f"reliq send: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    try:
        out = asyncio.run(_client_call(a))
    except ValueError as e:  # bad name, id, key, count or payload, unregistered: bad input
        print(f"reliq {a.cmd}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(codec.encode(out).decode())


def _redis(a: argparse.Namespace) -> None:
    from reliq.devserver.embedded import serve

    serve(a.port, a.data_dir, appendfsync=a.appendfsync)


def _worker(a: argparse.Namespace) -> None:
    from reliq.worker.run import run_worker
    from reliq.worker.supervise import default_processes, run_processes

    processes = a.processes if a.processes is not None else default_processes()  # >= 1 (parser)
    app = load_app(a.app)  # a bad MODULE:APP ends here with one line, before any child starts
    if processes == 1:
        run_worker(app, a.redis_url, _worker_config(a))
    else:
        logging_args = ("--log-level", a.log_level, "--log-format", a.log_format)
        run_processes(a.app, a.redis_url, _worker_config(a), processes, logging_args)


def _gateway(a: argparse.Namespace) -> None:
    serve_gateway(a.redis_url, a.host, a.port, a.app, a.durability, a.workers)


def _dev(a: argparse.Namespace) -> None:
    from reliq.devserver.dev import run_dev

    config = _worker_config(a)
    run_dev(a.app, config, workers=a.workers, port=a.port, redis_port=a.redis_port, data_dir=a.data_dir)


COMMANDS = {"redis": _redis, "worker": _worker, "gateway": _gateway, "dev": _dev}


def main(argv: list[str] | None = None) -> None:
    try:
        _main(argv)
        sys.stdout.flush()  # a closed pipe shows here at the latest, not at interpreter exit
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say to anyone
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the exit's own flush must not fail again
        raise SystemExit(SIGPIPE_EXIT) from None


def _main(argv: list[str] | None) -> None:
    a = build_parser().parse_args(argv)
    if a.cluster:
        a.redis_url = as_cluster_url(a.redis_url)
    setup_logs(a.log_level, a.log_format)
    try:
        if a.cmd in COMMANDS:
            COMMANDS[a.cmd](a)
        elif a.cmd in cli_admin.COMMANDS:
            cli_admin.run(a)
        elif a.cmd in cli_trees.COMMANDS:
            cli_trees.run(a)
        elif a.cmd == "schedules":
            cli_schedules.run(a)
        elif a.cmd == "limits":
            cli_limits.run(a)
        else:
            _client_cmd(a)
    except LoadError as e:  # a MODULE:APP that does not load, a missing extra: one line, exit 2
        print(str(e), file=sys.stderr)
        raise SystemExit(2) from None
    except ModuleNotFoundError as e:  # an optional dependency this command needs
        extra = extra_for(e)
        if extra is None:
            raise
        print(f"reliq {a.cmd} needs the {extra} extra: pip install 'reliq[{extra}]'", file=sys.stderr)
        raise SystemExit(2) from None
    except (RedisConnectionError, RedisTimeoutError) as e:  # Redis unreachable (a worker waits instead)
        print(
            f"reliq {a.cmd}: Redis at {a.redis_url} is not reachable ({type(e).__name__}: {e})",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    except (RedisError, RedisClusterException) as e:  # the server refused: a db out of range, not a Cluster
        print(f"reliq {a.cmd}: Redis at {a.redis_url}: {type(e).__name__}: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except errors.ReliqError as e:  # one line: bad input (a ValueError) exit 2, a refusal exit 1
        print(f"reliq {a.cmd}: {refusal(e)}", file=sys.stderr)
        raise SystemExit(2 if isinstance(e, ValueError) else 1) from None


def refusal(e: Exception) -> str:
    """The one line for a refusal (an unknown invocation's message is only its id)."""
    if isinstance(e, errors.UnknownInvocation):
        return f"unknown or expired invocation {e}"
    return str(e)
