"""``make chaos-failover`` in miniature: a 3-primary Valkey Cluster with one replica each, a
3-partition service behind a real gateway at durability ``replicas:1`` and a real worker; the
primary of partition 1 (not partition 0, whose node also holds the service layout, so reliq's
own cluster client refreshes its slot map there anyway) is SIGKILLed under load and its replica takes over.

Asserted: every key is acknowledged, nothing acknowledged is lost, no journaled effect ran twice,
nothing is stuck, the replica was promoted and the killed partition acknowledged and executed
new work afterwards. Not asserted: that removing ``WAIT`` would make this test fail. On loopback
a replica usually has the write before the primary dies, with or without ``WAIT``, so a loss
without it cannot be produced deterministically here (docs/scaling.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from load_tests.chaos_failover import Config, markdown, run


@pytest.mark.timeout(120)
def test_a_primary_failover_under_replicas_1_loses_nothing_acknowledged(tmp_path: Path) -> None:
    cfg = Config(
        durability="replicas:1",
        n=300,
        duration=8.0,
        kills=1,
        node_timeout_ms=1000,
        restart_after=0.2,
        workers=1,
        gateways=1,
        visibility=2.0,
        retry_grace=30.0,
        drain_timeout=30.0,
    )
    res = run(cfg, tmp_path)
    print(markdown([res]))
    v = res.report.violations
    assert res.summary["acked"] == cfg.n, res.summary
    assert v["lost"] == 0 and v["duplicated effects"] == 0, res.report.examples
    assert v["stuck"] == 0 and v["never acked"] == 0 and v["conflicting ids"] == 0, res.report.examples
    assert len(res.kills) == 1
    kill = res.summary["kills"][0]
    assert kill["promoted"] not in (None, kill["killed"])  # the replica took over
    assert kill["first_ack_killed_partition_s"] is not None  # and the partition served again
    assert kill["first_execution_killed_partition_s"] is not None
