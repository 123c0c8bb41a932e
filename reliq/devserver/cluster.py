"""A local Valkey Cluster from the embedded ``valkey-server`` binary, for tests, chaos runs and
benchmarks: P primaries (and R replicas each) on loopback ports, each an ``EmbeddedValkey`` with
AOF and ``appendfsync always``, slots assigned and nodes joined over RESP from Python (no
valkey-cli is shipped).

>>> with EmbeddedCluster(data_dir=Path(".reliq/cluster"), primaries=3) as cluster:
...     print(cluster.startup_nodes)       # [("127.0.0.1", 31001), ...]
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import redis

from reliq.devserver.embedded import EmbeddedValkey, ephemeral_low, port_is_free

SLOTS = 16384
BUS_OFFSET = 10000  # a node's cluster bus listens on port + 10000


def cluster_port(rng: random.Random) -> int:
    """A port whose cluster bus port (+10000) is free as well, both below the ephemeral range
    (see ``free_port``)."""
    top = ephemeral_low() - BUS_OFFSET
    for _ in range(500):
        port = rng.randrange(10000, top)
        if port_is_free(port) and port_is_free(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class EmbeddedCluster:
    """``primaries`` primaries with ``replicas`` replicas each, owned by this process."""

    def __init__(
        self, data_dir: Path | str, *, primaries: int = 3, replicas: int = 0, node_timeout_ms: int = 2000
    ) -> None:
        if primaries < 1 or replicas < 0:
            raise ValueError("need at least one primary")
        self.data_dir = Path(data_dir).resolve()
        self.primaries, self.replicas, self.node_timeout_ms = primaries, replicas, node_timeout_ms
        self.nodes: list[EmbeddedValkey] = []

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", n.port) for n in self.nodes]

    @property
    def url(self) -> str:
        """``redis+cluster://host:port,host:port,...`` (every node)."""
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.startup_nodes)

    def start(self, timeout: float = 30.0) -> EmbeddedCluster:
        rng = random.Random()
        try:
            for i in range(self.primaries * (1 + self.replicas)):
                port = cluster_port(rng)
                extra = {
                    "cluster-enabled": "yes",
                    "cluster-config-file": f"nodes-{port}.conf",
                    "cluster-node-timeout": str(self.node_timeout_ms),
                }
                node = EmbeddedValkey(port=port, data_dir=self.data_dir / f"node-{i}", extra=extra)
                self.nodes.append(node.start())
            self._join(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _call(self, node: EmbeddedValkey, *args: Any) -> Any:
        with redis.Redis(port=node.port, socket_timeout=5, decode_responses=True) as r:
            return r.execute_command(*args)

    def _join(self, timeout: float) -> None:
        primaries = self.nodes[: self.primaries]
        step = SLOTS // self.primaries
        for i, node in enumerate(primaries):
            last = SLOTS - 1 if i == self.primaries - 1 else (i + 1) * step - 1
            self._call(node, "CLUSTER", "ADDSLOTSRANGE", i * step, last)
        for node in self.nodes[1:]:
            self._call(self.nodes[0], "CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + timeout
        if self.replicas:
            ids = [self._call(n, "CLUSTER", "MYID") for n in primaries]
            for j, node in enumerate(self.nodes[self.primaries :]):
                primary = ids[j % self.primaries]
                while True:  # the replica must have learnt the primary's id through gossip
                    try:
                        self._call(node, "CLUSTER", "REPLICATE", primary)
                        break
                    except redis.ResponseError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
        self.wait_ok(deadline - time.monotonic())

    def info(self, node: EmbeddedValkey) -> dict[str, str]:
        """``CLUSTER INFO`` of one node as a dict of strings."""
        raw = self._call(node, "CLUSTER", "INFO")
        text = raw if isinstance(raw, str) else str(raw)
        return dict(line.split(":", 1) for line in text.strip().splitlines() if ":" in line)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node reports ``cluster_state:ok`` and knows every other node."""
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for node in self.nodes:
                try:
                    info = self.info(node)
                    ok = info.get("cluster_state") == "ok"
                    states.append(ok and info.get("cluster_known_nodes") == str(len(self.nodes)))
                except (redis.ConnectionError, redis.TimeoutError):
                    states.append(False)
            if all(states):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster not ok after {timeout:.0f} s: {states}")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
