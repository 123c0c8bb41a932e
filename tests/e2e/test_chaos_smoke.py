"""The chaos harness in miniature (the long run is ``make chaos``): real Valkey, gateway and worker
processes; workers and Valkey SIGKILLed under load; poison jobs. The checker must count zero
lost invocations, zero duplicated effects, zero conflicting ids, nothing stuck, and exactly the
poison set parked."""

from __future__ import annotations

from pathlib import Path

import pytest

from load_tests.chaos import Config, run
from load_tests.chaos_check import VIOLATIONS, table


@pytest.mark.timeout(150)
def test_chaos_smoke_kill_worker_kill_valkey_poison(tmp_path: Path) -> None:
    cfg = Config(
        n=600,
        duration=25.0,
        nemeses=("kill-worker", "kill-valkey", "poison"),
        seed=7,
        workers=2,
        gateways=1,
        visibility=2.0,
        retry_grace=30.0,
        drain_timeout=40.0,
        results=tmp_path,
    )
    report, workdir = run(cfg)
    print(table(report))
    assert set(report.violations) == set(VIOLATIONS)
    assert report.ok, f"{report.violations} {report.examples} (run kept in {workdir})"
    assert report.counters["acked"] == cfg.n
    assert report.counters["faults injected"] >= 4  # both nemeses fired more than once
    assert report.counters["parked"] == report.counters["poison keys"] == 7  # 6 failing + 1 crashing
