"""The function-tree benchmark runs (the measurement itself is ``make bench``): a few seconds of
each throughput mode and a small many-suspended run, every tree checked by the script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_bench_trees_runs() -> None:
    args = ["--parents", "50", "--small", "10", "--duration", "0.5", "--warmup", "0.2"]
    args += ["--rounds", "1", "--inflight", "4", "--no-save"]
    done = subprocess.run(
        [sys.executable, "-m", "load_tests.bench_trees", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for mode in ("| plain |", "| parent |", "| parent_s0 |"):
        assert mode in table
    assert "{'ok': 50}" in table and "{'ok': 10}" in table
